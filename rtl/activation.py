"""Write-back arithmetic shared by the MAC array and the vector unit: rounding, saturation and
the activations (ReLU; sigmoid and tanh piecewise linear from :mod:`dypipe.sw.pwl`).

Each helper names its result with a combinational signal: Amaranth does not share a
sub-expression used twice, so without them every use would rebuild the logic below it."""

from amaranth import Const, Mux, Signal, signed

from ..config import ELEM_BITS
from ..sw.isa import Act
from ..sw.pwl import COEFF_BITS, SEGMENTS, table

__all__ = ["saturate", "round_shift", "activate"]

_LO, _HI = -(1 << (ELEM_BITS - 1)), (1 << (ELEM_BITS - 1)) - 1


def _named(m, value, shape, name):
    sig = Signal(shape, name=name)
    m.d.comb += sig.eq(value)
    return sig


def saturate(m, value, name="sat"):
    """``value`` clamped to a signed 16-bit value."""
    v = _named(m, value, value.shape(), f"{name}_in")
    return _named(m, Mux(v > _HI, _HI, Mux(v < _LO, _LO, v)), signed(ELEM_BITS), name)


def round_shift(value, shift):
    """``(value + 2**(shift-1)) >> shift``, arithmetic (round to nearest, ties up); ``shift``
    an int or an unsigned Value at least 1."""
    if isinstance(shift, int):
        return (value + (1 << (shift - 1))) >> shift
    return (value + (Const(1, len(value) + 1) << (shift - 1).as_unsigned())) >> shift


def _pwl(m, x, act, frac_bits, name):
    shift, slopes, intercepts = table(act, frac_bits)
    half = SEGMENTS // 2
    lo, hi = -half << shift, (half << shift) - 1
    xc = _named(m, Mux(x < lo, lo, Mux(x > hi, hi, x)), signed(ELEM_BITS), f"{name}_xc")
    seg = ((xc >> shift) + SEGMENTS // 2)[:SEGMENTS.bit_length() - 1]
    # A case statement per table: cheap to simulate (an indexed part-select of a constant
    # vector is a wide variable shift in Verilator).
    slope = Signal(signed(COEFF_BITS), name=f"{name}_slope")
    inter = Signal(signed(COEFF_BITS), name=f"{name}_inter")
    with m.Switch(seg):
        for k, (a, b) in enumerate(zip(slopes, intercepts)):
            with m.Case(k):
                m.d.comb += [slope.eq(a), inter.eq(b)]
    return saturate(m, round_shift(slope * xc + (inter << frac_bits), frac_bits), f"{name}_y")


def activate(m, x, act, frac_bits, name="act"):
    """``act`` (a run-time :class:`Act` value) of a signed 16-bit value ``x`` (a signal)."""
    sig = _pwl(m, x, Act.SIGMOID, frac_bits, f"{name}_sig")
    tanh = _pwl(m, x, Act.TANH, frac_bits, f"{name}_tanh")
    return _named(m, Mux(act == Act.RELU, Mux(x < 0, 0, x),
                         Mux(act == Act.SIGMOID, sig, Mux(act == Act.TANH, tanh, x))),
                  signed(ELEM_BITS), name)
