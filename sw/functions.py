"""The module functions the operator compilers share: one DMA load or store per buffer, and
the PFU's macro-instructions with each activation. Each exists once, so that programs mixing
layers register every function under one name.

A transfer of one plane takes the 2-D functions (DLOAD / DSTORE), whose contexts hold the six
parameters they use, three context loads fewer a task than the 3-D ones; :func:`dma_task`
picks the right one."""

import functools

from .isa import Act, Buf, Unit, VecFn, DMA_PARAMS, CONV_PARAMS, VEC_PARAMS
from .program import module_function

__all__ = ["PARAM_BLOCK", "LOAD", "STORE", "LOAD_2D", "STORE_2D", "CONV", "VEC", "conv_function",
           "dma_params", "dma_task"]

#: First module register of the parameter block a multi-instruction module function builds
#: itself (a CONV or VEC block, or a scratch value for DMA spans): with at most four
#: parameters (r2 ..) and a DMA span block right above them (six registers), r12 and up are
#: free.
PARAM_BLOCK = 12

#: The parameters of a transfer of one plane.
DMA_2D_PARAMS = DMA_PARAMS[:6]


def dma_params(prefix="", **values):
    """Parameters of one DMA: defaults one plane of one row and zero strides."""
    values = {"rows": 1, "dram_stride": 0, "buf_stride": 0, "planes": 1,
              "dram_plane_stride": 0, "buf_plane_stride": 0, **values}
    return {f"{prefix}{name}": values[name] for name in DMA_PARAMS}


def _transfer(unit, buf, planes):
    kind = "load" if unit == Unit.IO else "store"
    params = DMA_PARAMS if planes else DMA_2D_PARAMS

    @module_function(unit, *params, name=f"{kind}_{buf.name.lower()}{'' if planes else '_2d'}")
    def transfer(f, p):
        (f.dload if unit == Unit.IO else f.dstore)(buf, p.dram_addr, planes=planes)
    return transfer


def dma_task(kind, buf, *, reads=(), writes=(), **values):
    """A load (``kind`` "load") or store of ``buf`` with the :data:`DMA_PARAMS` ``values``
    (defaults as :func:`dma_params`), on the 2-D function when it is one plane (or planes
    that continue each other's rows)."""
    from .schedule import Task
    params = dma_params(**values)
    rows, planes = params["rows"], params["planes"]
    if planes > 1 and all(params[f"{side}_plane_stride"] == rows * params[f"{side}_stride"]
                          for side in ("dram", "buf")):
        # Planes that continue each other's rows are rows: one plane.
        params.update(rows=rows * planes, planes=1, dram_plane_stride=0, buf_plane_stride=0)
    flat = params["planes"] == 1 and not params["dram_plane_stride"] \
        and not params["buf_plane_stride"]
    fns = {("load", False): LOAD, ("store", False): STORE, ("load", True): LOAD_2D,
           ("store", True): STORE_2D}[kind, flat]
    if flat:
        params = {name: params[name] for name in DMA_2D_PARAMS}
    return Task(fns[buf], params, reads=tuple(reads), writes=tuple(writes))


@functools.lru_cache(maxsize=None)
def conv_function(act, wshift=0):
    """A function running one :attr:`Op.CONV` with bias, activation ``act``, on weights with
    ``wshift`` extra fraction bits."""
    name = f"conv_bias_{Act(act).name.lower()}{f'_w{wshift}' if wshift else ''}"

    @module_function(Unit.PFU, *CONV_PARAMS, name=name)
    def conv(f, p):
        f.conv(p.dst, bias=True, act=act, wshift=wshift)
    return conv


def _vec(fn, act):
    @module_function(Unit.PFU, *VEC_PARAMS, name=f"vec_{fn.name.lower()}_{act.name.lower()}")
    def vec(f, p):
        f.vec(p.dst, fn, act)
    return vec


#: Buf -> a function that loads one 3-D transfer into it.
LOAD = {buf: _transfer(Unit.IO, buf, True) for buf in Buf}
#: Buf -> a function that stores one 3-D transfer from it.
STORE = {buf: _transfer(Unit.STORE, buf, True) for buf in Buf}
#: The same for one plane.
LOAD_2D = {buf: _transfer(Unit.IO, buf, False) for buf in Buf}
STORE_2D = {buf: _transfer(Unit.STORE, buf, False) for buf in Buf}
#: Act -> a function running one :attr:`Op.CONV` with bias (weights without extra fraction
#: bits; :func:`conv_function` for others).
CONV = {act: conv_function(act) for act in Act}
#: (VecFn, Act) -> a function running one :attr:`Op.VEC`.
VEC = {(fn, act): _vec(fn, act) for fn in VecFn for act in Act}
