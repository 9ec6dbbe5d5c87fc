"""What the design's arithmetic and memories are built from: the ``backend`` that
:class:`~dypipe.rtl.top.Top` and its units take.

- ``"amaranth"``: the Amaranth descriptions alone, for Amaranth's simulator and for any
  synthesizer (``dypipe verilog``).
- ``"verilog"``: the SRAM banks, the MAC array and the lane arithmetic as plain Verilog twins
  (``rtl/verilog/``) that Verilator simulates faster; ``dypipe equiv`` proves each equivalent
  to its Amaranth description.
- ``"ecp5"``: the Amaranth descriptions, with the MAC array's registered products as the
  ECP5's ``MULT18X18D`` blocks holding them in their own output registers
  (:func:`ecp5_product`; Yosys's ``synth_ecp5`` maps a multiplier to a ``MULT18X18D`` but
  leaves its register in the fabric). ``dypipe synth`` builds it; no simulator here has the
  block.
"""

from amaranth import Cat, Const, Signal
from amaranth.hdl import ClockSignal, Instance

__all__ = ["BACKENDS", "check_backend", "ecp5_product"]

BACKENDS = ("amaranth", "verilog", "ecp5")


def check_backend(backend):
    """``backend``, or :class:`ValueError` naming the ones there are."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return backend


def ecp5_product(m, name, a, b, product, en):
    """In ``m``, an ECP5 ``MULT18X18D`` block called ``name`` whose output register takes
    ``a * b`` (signed, at most 18 bits each) at each clock edge with ``en``; ``product`` (at
    most 36 bits) is that register. The pins are Yosys's own mapping of a signed multiplier
    (``share/lattice/dsp_map_18x18.v``: operands sign-extended to 18 bits, ``SIGNEDA`` /
    ``SIGNEDB`` high, C, ``SOURCEA`` / ``SOURCEB`` low), with the output register on ``CLK0``,
    ``CE0`` and ``RST0`` (never reset: the products are read only on the cycle after ``en``).
    nextpnr times such a block as a register (its timing ``MULT18X18D_REGS_OUTPUT``)."""
    if max(len(a), len(b)) > 18 or len(product) > 36:
        raise ValueError(f"an 18 x 18 multiplier takes {len(a)} x {len(b)} bits into "
                         f"{len(product)}")
    pins = {}
    for pin, value in (("A", a), ("B", b)):
        wide = Cat(value, value[-1].replicate(18 - len(value)))
        pins |= {f"i_{pin}{i}": wide[i] for i in range(18)}
    pins |= {f"i_C{i}": Const(0, 1) for i in range(18)}
    full = Signal(36, name=f"{name}_p")
    pins |= {f"o_P{i}": full[i] for i in range(36)}
    m.submodules[name] = Instance(
        "MULT18X18D", p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
        i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1), i_SOURCEA=Const(0, 1),
        i_SOURCEB=Const(0, 1), i_CLK0=ClockSignal(), i_CE0=en, i_RST0=Const(0, 1), **pins)
    m.d.comb += product.eq(full[:len(product)])
