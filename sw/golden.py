"""The golden model: numpy, bit-exact with the hardware's fixed-point arithmetic.

Values are int16 in two's complement with ``frac_bits`` fraction bits. A layer accumulates
exactly (int64 here, ``acc_bits`` in the PFU), starts from the bias shifted left by
``frac_bits``, then writes back ``saturate16((acc + 2**(frac_bits-1)) >> frac_bits)`` (round to
nearest, ties towards +infinity; ``>>`` is arithmetic) and applies the activation.
"""

import numpy as np

from .isa import Act, AVG_SHIFT
from .pwl import activate

__all__ = ["write_back", "fc", "conv2d", "pool2d", "avg_scale", "eltwise", "to_fixed",
           "from_fixed"]

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def to_fixed(values, frac_bits):
    """Real numbers to int16 fixed point (round to nearest, saturate)."""
    return np.clip(np.round(np.asarray(values) * (1 << frac_bits)), INT16_MIN,
                   INT16_MAX).astype(np.int16)


def from_fixed(values, frac_bits):
    return np.asarray(values, dtype=np.float64) / (1 << frac_bits)


def write_back(acc, frac_bits, act=Act.NONE, acc_bits=None, w_shift=0):
    """Accumulator values (int64) to int16 outputs, as the PFU's write-back stage does: round
    by ``frac_bits + w_shift`` bits (``w_shift``: the weights' extra fraction bits).

    Raises :class:`OverflowError` if an accumulator exceeds ``acc_bits`` (the hardware would
    wrap; no workload may rely on that)."""
    acc = np.asarray(acc, dtype=np.int64)
    if acc_bits is not None and acc.size:
        bound = 1 << (acc_bits - 1)
        if acc.min() < -bound or acc.max() >= bound:
            raise OverflowError(f"accumulator exceeds {acc_bits} bits")
    shift = frac_bits + w_shift
    y = np.clip((acc + (1 << (shift - 1))) >> shift, INT16_MIN, INT16_MAX)
    return activate(act, y.astype(np.int16), frac_bits)


def fc(x, weights, bias, frac_bits, act=Act.NONE, acc_bits=None, w_shift=0):
    """Fully connected layer: ``y = act(W @ x + b)`` with ``W`` of shape (out, in), whose
    values have ``frac_bits + w_shift`` fraction bits."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(weights, dtype=np.int64)
    acc = (np.asarray(bias, dtype=np.int64) << (frac_bits + w_shift)) + _matmul(w, x)
    return write_back(acc, frac_bits, act, acc_bits, w_shift)


def _matmul(a, b):
    """``a @ b`` of int16-range integers, exact: in float64 (BLAS) when every sum stays below
    2**53, else in int64."""
    k = a.shape[-1]
    if k * (1 << 30) < (1 << 53):
        return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a @ b


def conv2d(x, weights, bias, stride, pad, frac_bits, act=Act.NONE, acc_bits=None, w_shift=0):
    """Convolution of ``x`` (H, W, Cin) with ``weights`` (Cout, Cin, KH, KW): zero padding
    ``pad``, then (OH, OW, Cout) outputs written back like :func:`fc`."""
    x = np.pad(np.asarray(x, dtype=np.int64), ((pad, pad), (pad, pad), (0, 0)))
    w = np.asarray(weights, dtype=np.int64)
    n_out, _, kh, kw = w.shape
    oh = (x.shape[0] - kh) // stride + 1
    ow = (x.shape[1] - kw) // stride + 1
    acc = np.broadcast_to(np.asarray(bias, dtype=np.int64) << (frac_bits + w_shift),
                          (oh, ow, n_out)).copy()
    for i in range(kh):
        for j in range(kw):
            window = x[i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            acc += _matmul(window, w[:, :, i, j].T)
    return write_back(acc, frac_bits, act, acc_bits, w_shift)


def pool2d(x, kernel, stride, pad, kind, pad_value=0, scale=None, act=Act.NONE, frac_bits=8):
    """Max (``kind="max"``) or average pooling of ``x`` (H, W, C) with a ``kernel`` window (an
    int or (kh, kw)); padding with ``pad_value``. The average is ``round(sum * scale /
    2**AVG_SHIFT)``, ``scale`` defaulting to :func:`avg_scale`, as the vector unit computes
    it."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = np.pad(np.asarray(x, dtype=np.int64), ((pad, pad), (pad, pad), (0, 0)),
               constant_values=pad_value)
    oh = (x.shape[0] - kh) // stride + 1
    ow = (x.shape[1] - kw) // stride + 1
    windows = [x[i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
               for i in range(kh) for j in range(kw)]
    if kind == "max":
        y = np.max(windows, axis=0)
    else:
        scale = avg_scale(kh * kw) if scale is None else scale
        y = np.clip((np.sum(windows, axis=0) * scale + (1 << (AVG_SHIFT - 1))) >> AVG_SHIFT,
                    INT16_MIN, INT16_MAX)
    return activate(act, y.astype(np.int16), frac_bits)


def avg_scale(window):
    """The vector unit's multiplier for an average over ``window`` values."""
    return round((1 << AVG_SHIFT) / window)


def eltwise(a, b, op, frac_bits, act=Act.NONE):
    """``a + b`` (saturated) or ``a * b`` (fixed point, rounded, saturated), then ``act``."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if op == "add":
        y = a + b
    else:
        y = (a * b + (1 << (frac_bits - 1))) >> frac_bits
    return activate(act, np.clip(y, INT16_MIN, INT16_MAX).astype(np.int16), frac_bits)
