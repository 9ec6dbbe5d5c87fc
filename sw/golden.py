"""The golden model: numpy, bit-exact with the hardware's fixed-point arithmetic.

Values are int16 in two's complement with ``frac_bits`` fraction bits. A layer accumulates
exactly (int64 here, ``acc_bits`` in the PFU), starts from the bias shifted left by
``frac_bits``, then writes back ``saturate16((acc + 2**(frac_bits-1)) >> frac_bits)`` (round to
nearest, ties towards +infinity; ``>>`` is arithmetic) and applies the activation.
"""

import numpy as np

from .isa import Act
from .pwl import activate

__all__ = ["write_back", "fc", "to_fixed", "from_fixed"]

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def to_fixed(values, frac_bits):
    """Real numbers to int16 fixed point (round to nearest, saturate)."""
    return np.clip(np.round(np.asarray(values) * (1 << frac_bits)), INT16_MIN,
                   INT16_MAX).astype(np.int16)


def from_fixed(values, frac_bits):
    return np.asarray(values, dtype=np.float64) / (1 << frac_bits)


def write_back(acc, frac_bits, act=Act.NONE, acc_bits=None):
    """Accumulator values (int64) to int16 outputs, as the PFU's write-back stage does.

    Raises :class:`OverflowError` if an accumulator exceeds ``acc_bits`` (the hardware would
    wrap; no workload may rely on that)."""
    acc = np.asarray(acc, dtype=np.int64)
    if acc_bits is not None and acc.size:
        bound = 1 << (acc_bits - 1)
        if acc.min() < -bound or acc.max() >= bound:
            raise OverflowError(f"accumulator exceeds {acc_bits} bits")
    y = np.clip((acc + (1 << (frac_bits - 1))) >> frac_bits, INT16_MIN, INT16_MAX)
    return activate(act, y.astype(np.int16), frac_bits)


def fc(x, weights, bias, frac_bits, act=Act.NONE, acc_bits=None):
    """Fully connected layer: ``y = act(W @ x + b)`` with ``W`` of shape (out, in)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(weights, dtype=np.int64)
    acc = (np.asarray(bias, dtype=np.int64) << frac_bits) + w @ x
    return write_back(acc, frac_bits, act, acc_bits)
