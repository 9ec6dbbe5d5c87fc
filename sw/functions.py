"""The module functions the operator compilers share: one DMA load or store per buffer, and
the PFU's macro-instructions with each activation. Each exists once, so that programs mixing
layers register every function under one name."""

from .isa import Act, Buf, Unit, VecFn, DMA_PARAMS, CONV_PARAMS, VEC_PARAMS
from .program import module_function

__all__ = ["LOAD", "STORE", "CONV", "VEC", "dma_params"]


def dma_params(prefix="", **values):
    """Parameters of one DMA: defaults one plane of one row and zero strides."""
    values = {"rows": 1, "dram_stride": 0, "buf_stride": 0, "planes": 1,
              "dram_plane_stride": 0, "buf_plane_stride": 0, **values}
    return {f"{prefix}{name}": values[name] for name in DMA_PARAMS}


def _load(buf):
    @module_function(Unit.IO, *DMA_PARAMS, name=f"load_{buf.name.lower()}")
    def load(f, p):
        f.dload(buf, p.dram_addr)
    return load


def _store(buf):
    @module_function(Unit.STORE, *DMA_PARAMS, name=f"store_{buf.name.lower()}")
    def store(f, p):
        f.dstore(buf, p.dram_addr)
    return store


def _conv(act):
    @module_function(Unit.PFU, *CONV_PARAMS, name=f"conv_bias_{act.name.lower()}")
    def conv(f, p):
        f.conv(p.dst, bias=True, act=act)
    return conv


def _vec(fn, act):
    @module_function(Unit.PFU, *VEC_PARAMS, name=f"vec_{fn.name.lower()}_{act.name.lower()}")
    def vec(f, p):
        f.vec(p.dst, fn, act)
    return vec


#: Buf -> a function that loads one 2-D transfer into it.
LOAD = {buf: _load(buf) for buf in Buf}
#: Buf -> a function that stores one 2-D transfer from it.
STORE = {buf: _store(buf) for buf in Buf}
#: Act -> a function running one :attr:`Op.CONV` with bias.
CONV = {act: _conv(act) for act in Act}
#: (VecFn, Act) -> a function running one :attr:`Op.VEC`.
VEC = {(fn, act): _vec(fn, act) for fn in VecFn for act in Act}
