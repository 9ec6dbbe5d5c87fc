"""Single-operator workloads: a convolution, pooling or elementwise layer with random data,
compiled for one mode, with its roofline; and the nine operators of the paper's Table 2.

How the rows of Table 2 are read (docs/benchmarks.md says the same):

* Conv rows give output channels, the output height and width, input channels, kernel and
  stride; the padding keeps the size ("same" padding, (k - 1) / 2): Conv1 is AlexNet's
  conv2 (27x27x96 -> 27x27x256, 5x5, pad 2), Conv2 GoogLeNet's conv2 (56x56x64 ->
  56x56x192, 3x3, pad 1), Conv3 a 1x1 (56x56x128 -> 56x56x64).
* Pool rows give channels and the *input* height and width, kernel and stride; all are max
  pools. Pool1 is ResNet-18's (112x112, pad 1 -> 56x56), Pool2 AlexNet's (27x27, no pad ->
  13x13), Pool3 GoogLeNet's 4e pool (14x14, pad 1 -> 14x14).
* FC rows give outputs and inputs (bias and ReLU included).
"""

import dataclasses

import numpy as np

from .conv import ConvLayer
from .golden import INT16_MIN
from .eltwise import EltwiseLayer
from .fc import random_fc
from .image import DramImage
from .isa import Act
from .pool import PoolLayer
from .program import ProgramBuilder
from .schedule import emit
from .tensor import alloc_tensor, out_size
from .workload import CompileError, Workload

__all__ = ["conv_workload", "pool_workload", "eltwise_workload", "fc_workload",
           "Op2", "TABLE2", "table2_ops", "op_workload"]

def _finish(config, name, mode, layer, image, inputs):
    """The workload running ``layer`` alone on ``inputs`` (tensors holding their data)."""
    pb = ProgramBuilder(config)
    emit(pb, layer.steps(), mode)
    pb.halt()
    storage = {t.region.name: image.data(t.region.name) for t in (*inputs, layer.out)}
    layer.expected_into(storage)
    out = layer.out
    return Workload(name=name, mode=mode, config=config,
                    program=pb.assemble(f"<{name}>", image=image),
                    image=image, expected={out.region.name: storage[out.region.name]},
                    compare={out.region.name: out.mask()}, meta=layer.meta())


def _data(config, rng, shape, lo=-1.0, hi=1.0):
    one = 1 << config.frac_bits
    return rng.integers(int(lo * one), int(hi * one), shape, dtype=np.int16)


def conv_workload(config, *, h, w, cin, cout, kernel, stride=1, pad=0, act=Act.RELU,
                  mode="dypipe", seed=0, name="conv"):
    """A convolution of an (h, w, cin) input (padded by ``pad``) with random data."""
    rng = np.random.default_rng(seed)
    one = 1 << config.frac_bits
    image = DramImage(config)
    x = _data(config, rng, (h, w, cin))
    scale = max(1, int(one / np.sqrt(cin * kernel * kernel)))
    weights = rng.integers(-scale, scale + 1, (cout, cin, kernel, kernel), dtype=np.int16)
    bias = rng.integers(-one // 2, one // 2, cout, dtype=np.int16)
    tx = alloc_tensor(image, f"{name}.x", h, w, cin, pad=pad, data=x)
    if tx.hp < kernel or tx.wp < kernel:
        raise CompileError(f"{name}: a {kernel}x{kernel} kernel does not fit a {h}x{w} input "
                           f"padded by {pad}")
    oh, ow = out_size(tx.hp, kernel, stride), out_size(tx.wp, kernel, stride)
    out = alloc_tensor(image, f"{name}.y", oh, ow, cout)
    layer = ConvLayer(config, image, name, tx, weights, bias, stride=stride, act=act, out=out)
    return _finish(config, name, mode, layer, image, [tx])


def pool_workload(config, *, h, w, c, kernel, stride, pad=0, kind="max", act=Act.NONE,
                  mode="dypipe", seed=0, name="pool", separable=None):
    """Pooling of an (h, w, c) input with random data; a max pool's halo holds the most
    negative value, an average pool's zeros."""
    rng = np.random.default_rng(seed)
    image = DramImage(config)
    x = _data(config, rng, (h, w, c))
    pad_value = INT16_MIN if kind == "max" else 0
    tx = alloc_tensor(image, f"{name}.x", h, w, c, pad=pad, pad_value=pad_value, data=x)
    if tx.hp < kernel or tx.wp < kernel:
        raise CompileError(f"{name}: a {kernel}x{kernel} window does not fit a {h}x{w} input "
                           f"padded by {pad}")
    oh, ow = out_size(tx.hp, kernel, stride), out_size(tx.wp, kernel, stride)
    out = alloc_tensor(image, f"{name}.y", oh, ow, c)
    layer = PoolLayer(config, name, tx, kernel=kernel, stride=stride, kind=kind, act=act,
                      out=out, separable=separable)
    return _finish(config, name, mode, layer, image, [tx])


def eltwise_workload(config, *, n, op="add", act=Act.NONE, mode="dypipe", seed=0,
                     name="eltwise"):
    """``a (op) b`` or ``act(a)`` over ``n`` random values."""
    rng = np.random.default_rng(seed)
    image = DramImage(config)
    a = _data(config, rng, (1, 1, n), -4, 4)
    b = _data(config, rng, (1, 1, n), -4, 4)
    ta = alloc_tensor(image, f"{name}.a", 1, 1, n, data=a)
    tb = alloc_tensor(image, f"{name}.b", 1, 1, n, data=b)
    out = alloc_tensor(image, f"{name}.y", 1, 1, n)
    layer = EltwiseLayer(config, name, op, ta, tb, out, act)
    return _finish(config, name, mode, layer, image, [ta, tb])


def fc_workload(config, *, n_out, n_in, mode="dypipe", seed=0, name="fc"):
    """An FC layer with bias and ReLU (:mod:`.fc`), with its roofline."""
    return random_fc(config, n_out, n_in, seed=seed, act=Act.RELU, mode=mode, name=name)


@dataclasses.dataclass(frozen=True)
class Op2:
    """One row of Table 2, as this project reads it."""
    name: str
    kind: str           # conv, fc or pool
    params: dict

    def build(self, config, mode, seed=0):
        builder = {"conv": conv_workload, "pool": pool_workload, "fc": fc_workload}[self.kind]
        return builder(config, mode=mode, seed=seed, name=self.name.lower(), **self.params)

    def scaled(self):
        """A smaller twin for the ``small`` configuration: channels / 8, sizes / 4."""
        p = dict(self.params)
        for key in ("cin", "cout", "c", "n_out", "n_in"):
            if key in p:
                p[key] = max(4, p[key] // 8)
        for key in ("h", "w"):
            if key in p:
                p[key] = max(p.get("kernel", 1) + 2, p[key] // 4)
        return Op2(self.name, self.kind, p)


#: The nine operators of the paper's Table 2 (see the module docstring for how they are read).
TABLE2 = (
    Op2("Conv1", "conv", dict(h=27, w=27, cin=96, cout=256, kernel=5, stride=1, pad=2)),
    Op2("Conv2", "conv", dict(h=56, w=56, cin=64, cout=192, kernel=3, stride=1, pad=1)),
    Op2("Conv3", "conv", dict(h=56, w=56, cin=128, cout=64, kernel=1, stride=1, pad=0)),
    Op2("FC1", "fc", dict(n_out=1000, n_in=512)),
    Op2("FC2", "fc", dict(n_out=4096, n_in=4096)),
    Op2("FC3", "fc", dict(n_out=1000, n_in=1024)),
    Op2("Pool1", "pool", dict(h=112, w=112, c=64, kernel=3, stride=2, pad=1)),
    Op2("Pool2", "pool", dict(h=27, w=27, c=512, kernel=3, stride=2, pad=0)),
    Op2("Pool3", "pool", dict(h=14, w=14, c=528, kernel=3, stride=1, pad=1)),
)


def table2_ops(config):
    """Table 2 for ``config``: as printed on ``paper``, scaled down on anything else."""
    return TABLE2 if config.name == "paper" else tuple(op.scaled() for op in TABLE2)


def op_workload(config, name, mode, seed=0):
    """The Table 2 operator called ``name`` (case-insensitive) for ``config``."""
    for op in table2_ops(config):
        if op.name.lower() == name.lower():
            return op.build(config, mode, seed)
    raise ValueError(f"unknown operator {name!r}; Table 2 has "
                     f"{', '.join(op.name for op in TABLE2)}")
