"""Write-back arithmetic shared by the MAC array and the vector unit: rounding, saturation and
the activations (ReLU; sigmoid and tanh piecewise linear from :mod:`dypipe.sw.pwl`)."""

from amaranth import Mux, Const, Array, signed

from ..config import ELEM_BITS
from ..sw.isa import Act
from ..sw.pwl import SEGMENTS, table

__all__ = ["saturate", "round_shift", "activate"]

_LO, _HI = -(1 << (ELEM_BITS - 1)), (1 << (ELEM_BITS - 1)) - 1


def saturate(value):
    """``value`` clamped to a signed 16-bit value."""
    return Mux(value > _HI, _HI, Mux(value < _LO, _LO, value))[:ELEM_BITS].as_signed()


def round_shift(value, shift):
    """``(value + 2**(shift-1)) >> shift``, arithmetic (round to nearest, ties up)."""
    return (value + (1 << (shift - 1))) >> shift


def _pwl(x, act, frac_bits):
    shift, slopes, intercepts = table(act, frac_bits)
    lo, hi = -8 << shift, (8 << shift) - 1
    xc = Mux(x < lo, lo, Mux(x > hi, hi, x))
    seg = ((xc >> shift) + SEGMENTS // 2)[:SEGMENTS.bit_length() - 1]
    slope = Array(Const(v, signed(ELEM_BITS + 2)) for v in slopes)[seg]
    inter = Array(Const(v, signed(ELEM_BITS + 2)) for v in intercepts)[seg]
    return saturate(round_shift(slope * xc + (inter << frac_bits), frac_bits))


def activate(x, act, frac_bits):
    """``act`` (a run-time :class:`Act` value) of a signed 16-bit value."""
    return Mux(act == Act.RELU, Mux(x < 0, 0, x),
               Mux(act == Act.SIGMOID, _pwl(x, Act.SIGMOID, frac_bits),
                   Mux(act == Act.TANH, _pwl(x, Act.TANH, frac_bits), x)))[:ELEM_BITS].as_signed()
