"""Write-back arithmetic shared by the MAC array and the vector unit: rounding, saturation and
the activations (ReLU; sigmoid and tanh piecewise linear from :mod:`dypipe.sw.pwl`).

Each helper names its result with a combinational signal: Amaranth does not share a
sub-expression used twice, so without them every use would rebuild the logic below it. The
forms are chosen for an FPGA's logic, equal in value to the plain ones (the formal
equivalence check against the Verilog twin, ``docs/formal.md``, holds them to it): a clamp
to a power-of-two range tests the value's top bits instead of comparing it, rounding adds at
the shifted width, and sigmoid and tanh share one multiplier."""

from amaranth import Cat, Mux, Signal, signed

from ..config import ELEM_BITS
from ..sw.isa import Act
from ..sw.pwl import COEFF_BITS, SEGMENTS, table

__all__ = ["saturate", "round_shift", "pwl_operands", "pwl_curve", "activate"]


def _named(m, value, shape, name):
    sig = Signal(shape, name=name)
    m.d.comb += sig.eq(value)
    return sig


def _fit(m, value, bits, name):
    """``value`` clamped to the range of a signed ``bits``-bit number, as a signed
    ``ELEM_BITS``-bit signal (``bits <= ELEM_BITS``). It fits when its bits from ``bits - 1``
    up are all equal (all zero if it is unsigned): no comparator."""
    v = _named(m, value, value.shape(), f"{name}_in")
    signed_in = v.shape().signed
    if len(v) < bits or (len(v) == bits and signed_in):
        return _named(m, v, signed(ELEM_BITS), name)
    top = v[bits - 1:]
    fits = (top.all() | ~top.any()) if signed_in else ~top.any()
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    over = Mux(v[-1], lo, hi) if signed_in else hi
    # The low bits, sign-extended from bit ``bits - 1``.
    low = v[:bits].as_signed()
    return _named(m, Mux(fits, low, over), signed(ELEM_BITS), name)


def saturate(m, value, name="sat"):
    """``value`` clamped to a signed 16-bit value."""
    return _fit(m, value, ELEM_BITS, name)


def round_shift(value, shift, extra=None):
    """``(value + 2**(s-1)) >> s`` with ``s = shift + extra``, arithmetic (round to nearest,
    ties up); ``shift`` an int at least 1, ``extra`` an unsigned Value or None. Computed as
    ``(((value >> (shift-1)) >> extra) + 1) >> 1``, the same number: the adder is as wide as
    the shifted value, a run-time shift needs no second shifter for the rounding constant, and
    its shifter only the run-time part's stages, on the value already narrowed by ``shift``."""
    narrowed = value >> (shift - 1)
    if extra is not None:
        narrowed = narrowed >> extra
    return (narrowed + 1) >> 1


def pwl_operands(m, x, tanh, frac_bits, name):
    """Where sigmoid's piecewise-linear curve (tanh's where ``tanh`` is set) takes the signed
    ``x``: ``(xc, seg)``, ``x`` clamped to the curve's range and the segment it falls in (the
    table's index, tanh's above sigmoid's). ``x`` may be wider than 16 bits: its clamp is the
    clamp of its 16-bit saturation, since the curve's range lies inside 16 bits, so a lane may
    compute these beside its saturation and register them (``rtl/lanes.py``)."""
    half = SEGMENTS // 2
    seg_bits = (SEGMENTS - 1).bit_length()
    xcs, segs = [], []
    for act in (Act.SIGMOID, Act.TANH):
        shift, _, _ = table(act, frac_bits)
        # [-half << shift, (half << shift) - 1] is a signed (log2(half) + shift + 1)-bit range.
        xc = _fit(m, x, seg_bits + shift, f"{name}_{act.name.lower()}_xc")
        xcs.append(xc)
        segs.append(((xc >> shift) + half)[:seg_bits])
    xc = _named(m, Mux(tanh, xcs[1], xcs[0]), signed(ELEM_BITS), f"{name}_xc")
    seg = _named(m, Cat(Mux(tanh, segs[1], segs[0]), tanh), seg_bits + 1, f"{name}_seg")
    return xc, seg


def pwl_curve(m, xc, seg, frac_bits, name):
    """The curve's value at ``(xc, seg)`` (:func:`pwl_operands`): both tables in one case
    statement, one multiplier."""
    tables = [table(act, frac_bits) for act in (Act.SIGMOID, Act.TANH)]
    seg_bits = (SEGMENTS - 1).bit_length()
    # A case statement: cheap to simulate (an indexed part-select of a constant vector is a
    # wide variable shift in Verilator).
    # ``(slope * xc + (inter << f) + 2^(f-1)) >> f`` is ``((slope * xc >> (f-1)) + 2 * inter +
    # 1) >> 1``, the same number (the added term is a multiple of 2^(f-1)): the table holds
    # ``2 * inter + 1``, and one adder does the intercept and the rounding.
    slope = Signal(signed(COEFF_BITS), name=f"{name}_slope")
    offset = Signal(signed(COEFF_BITS + 1), name=f"{name}_offset")
    with m.Switch(seg):
        for t, (_, slopes, intercepts) in enumerate(tables):
            for k, (a, b) in enumerate(zip(slopes, intercepts)):
                with m.Case(k | (t << seg_bits)):
                    m.d.comb += [slope.eq(a), offset.eq(2 * b + 1)]
    return saturate(m, (((slope * xc) >> (frac_bits - 1)) + offset) >> 1, f"{name}_y")


def activate(m, x, act, curve, name="act"):
    """``act`` (a run-time :class:`Act` value) of a signed 16-bit value ``x`` (a signal), with
    ``curve`` sigmoid's or tanh's value at ``x`` (:func:`pwl_curve`)."""
    return _named(m, Mux(act == Act.RELU, Mux(x[-1], 0, x),
                         Mux((act == Act.SIGMOID) | (act == Act.TANH), curve, x)),
                  signed(ELEM_BITS), name)
