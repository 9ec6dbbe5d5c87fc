"""Sigmoid and tanh by piecewise-linear interpolation (DianNao's NFU-3): the one table.

The input ``x`` (16-bit fixed point, ``frac_bits`` fraction bits) is clamped to 16 segments
of width ``2**shift`` ulps centred on zero; segment ``s`` is the line through the function's
values at its two ends. With ``h = SEGMENTS / 2`` and ``xc = clamp(x, -h << shift,
(h << shift) - 1)``::

    s = (xc >> shift) + h
    y = saturate16((slope[s] * xc + (intercept[s] << frac_bits) + 2**(frac_bits-1)) >> frac_bits)

``slope`` and ``intercept`` are fixed point with ``frac_bits`` fraction bits. Sigmoid's
segments are 1.0 wide (it covers [-8, 8)), tanh's 0.5 (it covers [-4, 4)). The RTL builds its
constant tables from :func:`table` and the golden model calls :func:`apply`, so the two never
differ.
"""

import functools
import math

import numpy as np

from ..config import ELEM_BITS
from .isa import Act

__all__ = ["SEGMENTS", "COEFF_BITS", "table", "apply", "activate"]

SEGMENTS = 16
#: Width of a slope or an intercept (signed) in the hardware's tables.
COEFF_BITS = ELEM_BITS + 2

_FUNCTIONS = {Act.SIGMOID: (lambda v: 1 / (1 + math.exp(-v)), 0),
              Act.TANH: (math.tanh, -1)}


@functools.lru_cache(maxsize=None)
def table(act, frac_bits):
    """``(shift, slopes, intercepts)`` of a piecewise-linear activation."""
    fn, shift_delta = _FUNCTIONS[Act(act)]
    shift = max(0, frac_bits + shift_delta)
    one = 1 << frac_bits
    slopes, intercepts = [], []
    for s in range(SEGMENTS):
        x0 = ((s - SEGMENTS // 2) << shift) / one
        x1 = ((s - SEGMENTS // 2 + 1) << shift) / one
        slope = (fn(x1) - fn(x0)) / (x1 - x0)
        slopes.append(round(slope * one))
        intercepts.append(round((fn(x0) - slope * x0) * one))
    limit = 1 << (COEFF_BITS - 1)
    assert all(-limit <= v < limit for v in slopes + intercepts), "coefficient too wide"
    return shift, tuple(slopes), tuple(intercepts)


def _saturate16(v):
    return np.clip(v, -(1 << 15), (1 << 15) - 1)


def apply(act, x, frac_bits):
    """The piecewise-linear activation of int16 values ``x`` (an int16 array)."""
    shift, slopes, intercepts = table(act, frac_bits)
    half = SEGMENTS // 2
    xc = np.clip(np.asarray(x, dtype=np.int64), -half << shift, (half << shift) - 1)
    seg = (xc >> shift) + SEGMENTS // 2
    y = (np.asarray(slopes)[seg] * xc + (np.asarray(intercepts)[seg] << frac_bits)
         + (1 << (frac_bits - 1))) >> frac_bits
    return _saturate16(y).astype(np.int16)


def activate(act, x, frac_bits):
    """Any :class:`Act` on int16 values."""
    act = Act(act)
    x = np.asarray(x, dtype=np.int16)
    if act == Act.NONE:
        return x
    if act == Act.RELU:
        return np.maximum(x, 0).astype(np.int16)
    return apply(act, x, frac_bits)
