"""Networks: a graph compiled into one program per mode.

:func:`compile_graph` places a :class:`~.graph.Graph` in DRAM and turns each node into a layer:

* every tensor is stored once, with the halo its readers' padding needs (the largest); its
  halo holds zeros, or -32768 when only max pools pad it (zeros too when every writer ends in
  ReLU, so a convolution and a max pool can share it);
* a concatenation is no layer: each of its inputs is written straight into its channel slice
  of the concatenated tensor (the slices must start on a DRAM beat), so its writers must be
  layers that can write a slice (convolution, pooling, FC) and nothing else may read them;
* each layer is placed in the buffers as it is or mirrored (:attr:`.layer.Layer.flip`),
  whichever keeps the on-chip regions of its first tasks clear of those of the previous
  layer's last tasks: then its first input and weights load while that layer still computes
  (consecutive FC layers alternate the halves of SB and NBout this way);
* a convolution of the network input over few channels (an image's 3) reads it in a layout
  the host writes for it (:func:`.conv.stack_input`: each pixel holds a window's rows), when
  the tiler estimates that faster than the plain layout, whose lanes would mostly idle.

:func:`compose` takes layers already placed in a DRAM image, in an order where every layer
comes after the layers that write its inputs, and gives the :class:`Workload` running them:
one control program (each layer's steps emitted by :func:`.schedule.emit`), and as expected
outputs every tensor a layer writes, computed layer by layer by the golden model from the same
DRAM contents the machine starts from (halos included).
"""

import numpy as np

from .conv import ConvLayer, stack_input, stack_weights
from .eltwise import EltwiseLayer
from .fc import FCLayer
from .golden import INT16_MIN
from .image import DramImage
from .isa import Act, Space
from .pool import PoolLayer
from .program import ProgramBuilder
from .roofline import roofline
from .schedule import emit
from .layer import covered
from .tensor import alloc_tensor, out_size
from .tiler import plan_conv
from .workload import CompileError, Workload, MODES

__all__ = ["compose", "network_meta", "compile_graph", "output_of", "place", "Storage"]

#: Node kinds that can write a channel slice of a wider tensor (concat by layout).
_SLICE_WRITERS = ("conv", "pool", "fc")


def network_meta(config, layers):
    """Totals over ``layers``: MACs, weight bytes, compulsory bytes, and the sum of the
    per-layer rooflines (a network cannot run its layers faster than each one's bound)."""
    return {"layers": len(layers), "macs": sum(l.macs for l in layers),
            "weight_bytes": sum(l.weight_bytes for l in layers),
            "compulsory_bytes": sum(l.compulsory_bytes for l in layers),
            "roofline_cycles": sum(l.roofline_cycles for l in layers),
            "whole_roofline_cycles": roofline(config, sum(l.macs for l in layers),
                                              sum(l.compulsory_bytes for l in layers))}


def _ranges(task):
    return [(r, False) for r in task.reads] + [(r, True) for r in task.writes]


def _conflict(first, last):
    """On-chip beats that the tasks ``first`` (a layer's first) and ``last`` (the previous
    layer's last) both touch, one of them writing: the next layer's tasks there must wait."""
    total = 0
    for a in first:
        for (sa, la, na), wa in _ranges(a):
            if sa == Space.DRAM:
                continue
            for b in last:
                for (sb, lb, nb), wb in _ranges(b):
                    if sa == sb and (wa or wb):
                        total += max(0, min(la + na, lb + nb) - max(la, lb))
    return total


def place(layers, depth=2):
    """Choose each layer's :attr:`~.layer.Layer.flip` (the first as it is); returns every
    layer's steps."""
    steps, tail = [], []
    for i, layer in enumerate(layers):
        options = []
        for flip in ((False,) if i == 0 else (not layers[i - 1].flip, layers[i - 1].flip)):
            layer.flip = flip
            s = layer.steps()
            head = [t for step in s[:depth] for t in step]
            options.append((_conflict(head, tail), flip, s))
        cost, layer.flip, chosen = min(options, key=lambda o: o[0])
        steps.append(chosen)
        tail = [t for step in chosen[-depth:] for t in step]
    return steps


def compose(config, name, mode, image, layers, *, meta=None, program=None, steps=None):
    """The workload running ``layers`` in order in ``mode``. ``program`` (a ProgramBuilder
    callback ``program(pb, layers, mode)``) replaces the plain sequence of layers, for networks
    with run-time control flow. Every tensor a layer writes is checked, on the elements its
    layers write."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    pb = ProgramBuilder(config)
    if program is None:
        for layer, layer_steps in zip(layers, steps or [l.steps() for l in layers]):
            emit(pb, layer_steps, mode)
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
    return Workload(name=name, mode=mode, config=config,
                    program=pb.assemble(f"<{name}>", image=image),
                    image=image, expected={n: storage[n] for n in written},
                    compare=written, meta=info)


class Storage:
    """Where every tensor of a graph lives: concatenated tensors resolved to the tensor they are
    a channel slice of (:meth:`root`), and each stored tensor's halo and halo value."""

    def __init__(self, graph, config):
        self.graph, self.config = graph, config
        V = config.beat_elems
        self.parent = {}                 # tensor -> (concatenated tensor, first channel)
        for node in graph.nodes:
            if node.kind != "concat":
                continue
            first = 0
            for t in node.inputs:
                prod = graph.producer(t)
                readers = graph.consumers(t)
                if prod is None or prod.kind not in _SLICE_WRITERS or readers != [node]:
                    others = [r.name for r in readers if r is not node]
                    raise CompileError(
                        f"{node.name}: concatenation is done by layout, so each input must be "
                        f"written by a convolution, pooling or FC layer and read by nothing "
                        f"else; {t} is {'the network input' if prod is None else prod.kind}"
                        f"{' and read by ' + ', '.join(others) if others else ''}")
                if first % V:
                    raise CompileError(f"{node.name}: input {t} would start at channel {first}, "
                                       f"not on a DRAM beat of {V} channels")
                self.parent[t] = (node.output, first)
                first += graph.shapes[t][2]
        self.halo, self.pad_value = {}, {}
        for t in graph.shapes:
            if t not in self.parent:
                self.halo[t], self.pad_value[t] = self._halo(t)

    def root(self, tensor):
        """``(stored tensor, first channel)`` that ``tensor`` is."""
        first = 0
        while tensor in self.parent:
            tensor, offset = self.parent[tensor]
            first += offset
        return tensor, first

    def _padded_readers(self, tensor):
        return [(n, max(n.attrs["pads"])) for n in self.graph.consumers(tensor)
                if n.kind in ("conv", "pool") and any(n.attrs["pads"])]

    def _halo(self, tensor):
        readers = self._padded_readers(tensor)
        halo = max([p for _, p in readers], default=0)
        wants_min = [n for n, _ in readers if n.kind == "pool" and n.attrs["kind"] == "max"]
        wants_zero = [n for n, _ in readers if n not in wants_min]
        if not wants_min:
            return halo, 0
        if not wants_zero:
            return halo, INT16_MIN
        if self.non_negative(tensor):
            return halo, 0
        raise CompileError(
            f"{tensor} is padded with zeros by {wants_zero[0].name} and with the smallest value "
            f"by the max pool {wants_min[0].name}, and may be negative: one stored halo cannot "
            f"serve both")

    def non_negative(self, tensor):
        """Whether every value of ``tensor`` is known to be >= 0 (written by layers ending in
        ReLU, or max pools and concatenations of such)."""
        writers = [n for n in self.graph.nodes if n.output == tensor]
        if not writers:
            return False
        node = writers[0]
        if node.act == Act.RELU:
            return True
        if node.kind == "concat" or (node.kind == "pool" and node.attrs["kind"] == "max"):
            return all(self.non_negative(t) for t in node.inputs)
        return False


def _estimate(config, name, wp, cin, cout, kh, kw, stride, oh, ow):
    V = config.beat_elems
    try:
        return plan_conv(config, name, wp=wp, cpitch=-(-cin // V) * V, cout=cout, kh=kh, kw=kw,
                         stride=stride, oh=oh, ow=ow, out_cpitch=-(-cout // V) * V).estimate
    except CompileError:
        return None


def _stacks_input(config, graph, node):
    """Whether convolution ``node`` of the network input runs faster on the stacked layout
    (:func:`.conv.stack_input`) than on the plain one."""
    if node.kind != "conv" or node.inputs[0] != graph.input:
        return False
    h, w, cin = graph.shapes[graph.input]
    cout, _, kh, kw = node.attrs["weights"].shape
    top, left, bottom, right = node.attrs["pads"]
    s = node.attrs["stride"]
    hp, wp = h + top + bottom, w + left + right
    oh, ow = out_size(hp, kh, s), out_size(wp, kw, s)
    plain = _estimate(config, node.name, wp, cin, cout, kh, kw, s, oh, ow)
    kw2 = -(-kw // s)
    stacked = _estimate(config, node.name, ow + kw2 - 1, kh * s * cin, cout, 1, kw2, 1, oh, ow)
    return stacked is not None and (plain is None or stacked < plain)


def _stacked_conv(config, image, node, x, out, channel, index):
    """The convolution of the network input ``x`` ((h, w, c) values) on its stacked layout."""
    a = node.attrs
    top, left, bottom, right = a["pads"]
    _, _, kh, kw = a["weights"].shape
    s = a["stride"]
    xp = np.pad(x, ((top, bottom), (left, right), (0, 0)))
    data = stack_input(xp, kh, kw, s)
    t = alloc_tensor(image, f"t{index}:{node.name}.input", *data.shape, data=data)
    h, w, c = x.shape
    oh, ow = out_size(h + top + bottom, kh, s), out_size(w + left + right, kw, s)
    read = covered(h, top, kh, s, oh) * covered(w, left, kw, s, ow) * c
    return ConvLayer(config, image, node.name, t, stack_weights(a["weights"], s), a["bias"],
                     stride=1, act=node.act, out=out, channel=channel,
                     compulsory=(read, a["weights"].size + a["bias"].size,
                                 oh * ow * a["weights"].size), w_shift=a.get("w_shift", 0))


def _layer(config, image, node, views, out, channel):
    a = node.attrs
    if node.kind == "conv":
        return ConvLayer(config, image, node.name, views[0], a["weights"], a["bias"],
                         stride=a["stride"], act=node.act, out=out, channel=channel,
                         w_shift=a.get("w_shift", 0))
    if node.kind == "pool":
        return PoolLayer(config, node.name, views[0], kernel=a["kernel"], stride=a["stride"],
                         kind=a["kind"], act=node.act, out=out, channel=channel)
    if node.kind == "fc":
        return FCLayer(config, image, node.name, views[0], a["weights"], a["bias"], node.act,
                       out=out, channel=channel, w_shift=a.get("w_shift", 0))
    if channel:
        raise CompileError(f"{node.name}: an elementwise layer cannot write a channel slice")
    op = {"add": "add", "mul": "mul", "act": "act"}[node.kind]
    return EltwiseLayer(config, node.name, op, views[0], views[1] if len(views) > 1 else None,
                        out, node.act)


def compile_graph(config, graph, x, mode, *, name=None, meta=None):
    """The :class:`Workload` running ``graph`` on the input ``x`` ((h, w, c) int16) in
    ``mode``: every layer's output checked against the golden model. Raises
    :class:`CompileError` when a layer does not fit or the graph cannot be laid out."""
    graph.check()
    storage = Storage(graph, config)
    image = DramImage(config)
    x = np.asarray(x, dtype=np.int16).reshape(graph.shapes[graph.input])
    stacked = {n.name for n in graph.nodes if _stacks_input(config, graph, n)}
    tensors = {}
    for t, (h, w, c) in graph.shapes.items():
        if t in storage.parent or (t == graph.input and all(
                n.name in stacked for n in graph.consumers(t))):
            continue
        tensors[t] = alloc_tensor(image, f"t{len(tensors)}:{t}", h, w, c, pad=storage.halo[t],
                                  pad_value=storage.pad_value[t],
                                  data=x if t == graph.input else None)
    layers = []
    for node in graph.nodes:
        if node.kind == "concat":
            continue
        views = [tensors[storage.root(t)[0]].view(node.attrs.get("pads", (0, 0, 0, 0)))
                 for t in node.inputs if node.name not in stacked]
        root, channel = storage.root(node.output)
        if node.name in stacked:
            layer = _stacked_conv(config, image, node, x, tensors[root], channel, len(layers))
        else:
            layer = _layer(config, image, node, views, tensors[root], channel)
        layers.append(layer)
    root, channel = storage.root(graph.output)
    info = {"network": name or graph.name, "output": {
        "region": tensors[root].region.name, "shape": list(graph.shapes[graph.output]),
        "first_channel": channel}, **(meta or {})}
    wl = compose(config, name or graph.name, mode, image, layers, meta=info,
                 steps=place(layers))
    wl.tensors = {t: tensors[storage.root(t)[0]] for t in graph.shapes
                  if storage.root(t)[0] in tensors}
    return wl


def output_of(workload, outputs):
    """The network output's (h, w, c) values out of a run's ``outputs`` (region name ->
    contents)."""
    o = workload.meta["output"]
    stored = next(t for t in workload.tensors.values() if t.region.name == o["region"])
    values = stored.interior(outputs[o["region"]])
    return values[:, :, o["first_channel"]:o["first_channel"] + o["shape"][2]]
