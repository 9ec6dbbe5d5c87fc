"""Networks: layers composed into one program per mode.

:func:`compose` takes layers already placed in a DRAM image, in an order where every layer
comes after the layers that write its inputs, and gives the :class:`Workload` running them:
one control program (each layer's steps emitted by :func:`.schedule.emit`), and as expected
outputs every tensor a layer writes, computed layer by layer by the golden model from the same
DRAM contents the machine starts from (halos included).
"""

import numpy as np

from .program import ProgramBuilder
from .roofline import roofline
from .schedule import emit
from .workload import Workload, MODES

__all__ = ["compose", "network_meta"]


def network_meta(config, layers):
    """Totals over ``layers``: MACs, weight bytes, compulsory bytes, and the sum of the
    per-layer rooflines (a network cannot run its layers faster than each one's bound)."""
    return {"layers": len(layers), "macs": sum(l.macs for l in layers),
            "weight_bytes": sum(l.weight_bytes for l in layers),
            "compulsory_bytes": sum(l.compulsory_bytes for l in layers),
            "roofline_cycles": sum(l.roofline_cycles for l in layers),
            "whole_roofline_cycles": roofline(config, sum(l.macs for l in layers),
                                              sum(l.compulsory_bytes for l in layers))}


def compose(config, name, mode, image, layers, *, meta=None, program=None):
    """The workload running ``layers`` in order in ``mode``. ``program`` (a ProgramBuilder
    callback ``program(pb, layers, mode)``) replaces the plain sequence of layers, for networks
    with run-time control flow. Every tensor a layer writes is checked, on the elements its
    layers write."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    pb = ProgramBuilder(config)
    if program is None:
        for layer in layers:
            emit(pb, layer.steps(), mode)
        pb.halt()
    else:
        program(pb, layers, mode)
    tensors = {}
    for layer in layers:
        for t in (*layer.inputs, layer.out):
            tensors.setdefault(t.region.name, t)
    storage = {name: image.data(name) for name in tensors}
    written = {}
    for layer in layers:
        layer.expected_into(storage)
        out = layer.out
        span = slice(layer.channel, layer.channel + layer.out_shape[2])
        mask = written.get(out.region.name, np.zeros(out.region.elems, dtype=bool))
        written[out.region.name] = mask | out.mask(span)
    info = {**network_meta(config, layers), "per_layer": [l.meta() for l in layers],
            **(meta or {})}
    return Workload(name=name, mode=mode, config=config, program=pb.assemble(f"<{name}>"),
                    image=image, expected={n: storage[n] for n in written},
                    compare=written, meta=info)
