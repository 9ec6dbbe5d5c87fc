"""The network graph the compiler takes: quantized layers over named feature maps.

A :class:`Graph` is a list of :class:`Node` in an order where every node comes after the nodes
producing its inputs, over tensors that are feature maps of (height, width, channels) at
batch 1, in the machine's 16-bit fixed point. The ONNX importer (:mod:`.onnx_import`) builds
one; :func:`.network.compile_graph` places it in DRAM and compiles it.

Node kinds and their attributes (``act`` is an :class:`~.isa.Act` applied on write-back):

* ``conv``: ``weights`` (cout, cin, kh, kw) int16, ``bias`` (cout,) int16, ``stride``,
  ``pads`` (top, left, bottom, right), ``act``, ``w_shift`` (the weights' fraction bits beyond
  the activations', default 0);
* ``fc``: ``weights`` (n_out, h * w * c) int16 over the input's values in (h, w, c) order,
  ``bias``, ``act``, ``w_shift``; its output is 1 x 1 x n_out;
* ``pool``: ``kind`` ("max" or "avg"), ``kernel`` (kh, kw), ``stride``, ``pads``, ``act``;
* ``add``, ``mul``: two inputs of one shape, ``act``;
* ``act``: one input, ``act`` (a standalone activation);
* ``concat``: several inputs of one height and width, concatenated on channels.
"""

import dataclasses

from .isa import Act
from .tensor import out_size
from .workload import CompileError

__all__ = ["Node", "Graph", "KINDS"]

KINDS = ("conv", "fc", "pool", "add", "mul", "act", "concat")


@dataclasses.dataclass
class Node:
    kind: str
    name: str                  # for messages: the ONNX node (or nodes, when fused) it came from
    inputs: list
    output: str
    attrs: dict = dataclasses.field(default_factory=dict)

    @property
    def act(self):
        return Act(self.attrs.get("act", Act.NONE))


@dataclasses.dataclass
class Graph:
    """``input``: the name of the network input, ``shapes``: tensor name -> (h, w, c),
    ``output``: the name of the network output."""
    name: str
    input: str
    nodes: list
    output: str
    shapes: dict

    def producer(self, tensor):
        return next((n for n in self.nodes if n.output == tensor), None)

    def consumers(self, tensor):
        return [n for n in self.nodes if tensor in n.inputs]

    def check(self):
        """Raise :class:`CompileError` naming the node whose shapes do not agree."""
        known = {self.input}
        for node in self.nodes:
            if node.kind not in KINDS:
                raise CompileError(f"{node.name}: unknown node kind {node.kind!r}")
            for name in node.inputs:
                if name not in known:
                    raise CompileError(f"{node.name}: input {name!r} is not produced before it")
            expected = infer_shape(node, [self.shapes[i] for i in node.inputs])
            if self.shapes.get(node.output) != expected:
                raise CompileError(f"{node.name}: output {node.output} is "
                                   f"{self.shapes.get(node.output)}, the node gives {expected}")
            known.add(node.output)
        if self.output not in known:
            raise CompileError(f"{self.name}: the output {self.output!r} is never produced")


def infer_shape(node, shapes):
    """The (h, w, c) a node produces from its inputs' shapes."""
    a = node.attrs
    (h, w, c) = shapes[0]
    if node.kind in ("conv", "pool"):
        top, left, bottom, right = a["pads"]
        kh, kw = (a["weights"].shape[2:] if node.kind == "conv" else a["kernel"])
        oh = out_size(h + top + bottom, kh, a["stride"])
        ow = out_size(w + left + right, kw, a["stride"])
        if oh < 1 or ow < 1:
            raise CompileError(f"{node.name}: a {kh}x{kw} window does not fit a "
                               f"{h + top + bottom}x{w + left + right} input")
        if node.kind == "conv" and a["weights"].shape[1] != c:
            raise CompileError(f"{node.name}: weights take {a['weights'].shape[1]} channels, "
                               f"the input has {c}")
        return (oh, ow, a["weights"].shape[0] if node.kind == "conv" else c)
    if node.kind == "fc":
        n_out, n_in = a["weights"].shape
        if n_in != h * w * c:
            raise CompileError(f"{node.name}: weights take {n_in} inputs, the input has "
                               f"{h}x{w}x{c} = {h * w * c}")
        return (1, 1, n_out)
    if node.kind in ("add", "mul"):
        if len(set(shapes)) != 1:
            raise CompileError(f"{node.name}: operands of different shapes {shapes}")
        return shapes[0]
    if node.kind == "concat":
        if len({s[:2] for s in shapes}) != 1:
            raise CompileError(f"{node.name}: inputs of different sizes {shapes}")
        return (h, w, sum(s[2] for s in shapes))
    return shapes[0]
