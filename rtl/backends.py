"""What the design's arithmetic and memories are built from: the ``backend`` that
:class:`~dypipe.rtl.top.Top` and its units take.

- ``"amaranth"``: the Amaranth descriptions alone, for Amaranth's simulator and for any
  synthesizer (``dypipe verilog``).
- ``"verilog"``: the SRAM banks, the MAC array and the lane arithmetic as plain Verilog twins
  (``rtl/verilog/``) that Verilator simulates faster; ``dypipe equiv`` proves each equivalent
  to its Amaranth description.
- ``"ecp5"``: the Amaranth descriptions, with the MAC array's multipliers as the ECP5's
  ``MULT18X18D`` blocks holding the products in their own output registers (Yosys's
  ``synth_ecp5`` maps a multiplier to a ``MULT18X18D`` but leaves its register in the
  fabric). ``dypipe synth`` builds it; no simulator here has the block.
"""

__all__ = ["BACKENDS", "check_backend"]

BACKENDS = ("amaranth", "verilog", "ecp5")


def check_backend(backend):
    """``backend``, or :class:`ValueError` naming the ones there are."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return backend
