"""ONNX import: a model file to the quantized network :class:`~.graph.Graph` the compiler takes.

Only the ``onnx`` package is used (no torch, no onnxruntime). The model must have one input, a
float tensor ``[1, C, H, W]`` (or ``[1, K]``), and one output; batch 1.

Supported operators (anything else, or an attribute value the machine cannot run, is a
:class:`ImportError_` naming the node):

=====================  =====================================================================
Conv                   2-D, equal strides, any pads (or ``auto_pad``), dilation 1, group 1
Gemm, MatMul           on a flat input (after Flatten / Reshape, or an FC's output); the
                       weights are constant; ``Add`` of a constant after MatMul is its bias
Relu, Sigmoid, Tanh    fused into the layer before it when that is its only reader, else a
                       layer of their own (sigmoid and tanh are piecewise linear)
MaxPool, AveragePool   2-D, equal strides, pads, ``ceil_mode``; an average pool must not pad
                       (the machine divides by the whole window) unless ``count_include_pad``
GlobalAveragePool,     one window over the whole map
GlobalMaxPool
Add, Mul               of two tensors of one shape
Concat                 on channels
Flatten, Reshape       to ``[1, K]``, before an FC (the weights are reordered to the machine's
                       height x width x channels layout)
BatchNormalization     folded into the convolution before it
Dropout, Identity      removed
=====================  =====================================================================

Quantization. The machine computes in 16-bit two's complement fixed point: activations (the
input, every layer's output) and biases have ``config.frac_bits`` fraction bits (Q7.8 on the
presets: values in [-128, 128) in steps of 1/256). Each convolution's and FC layer's weights
have ``frac_bits + w_shift`` fraction bits, ``w_shift`` (0..15) the most that keeps its largest
weight in int16 (the MAC array then rounds its results by that many more bits): small weights
keep 12 to 15 significant bits instead of a few. Values are rounded to the nearest step and
saturated (after BatchNormalization is folded in float); :attr:`Imported.quantization`
counts how many weights saturated or became zero. Sigmoid and tanh are the machine's
piecewise-linear approximations. So the machine's output, dequantized, differs from the float
model's: :func:`float_reference` evaluates the float model with ``onnx.reference`` to say by
how much.
"""

import dataclasses
import pathlib

import numpy as np

from .golden import to_fixed, from_fixed
from .graph import Graph, Node
from .isa import Act
from .workload import CompileError

__all__ = ["ImportError_", "Imported", "import_onnx", "load_model", "float_reference",
           "quantize_input", "output_values", "weight_shift"]


class ImportError_(CompileError):
    """A model the importer cannot map onto the machine; the message names the node."""


@dataclasses.dataclass
class Imported:
    """An imported model. ``graph`` holds quantized weights; ``input_name`` / ``input_shape``
    are the ONNX input (NCHW); ``output_layout`` says how the machine's (h, w, c) output maps
    back to the ONNX output (``"nchw"`` or ``"flat"``: a flattened CHW map)."""
    graph: Graph
    model: object
    input_name: str
    input_shape: tuple
    output_name: str
    output_layout: str
    quantization: dict


_ACTS = {"Relu": Act.RELU, "Sigmoid": Act.SIGMOID, "Tanh": Act.TANH}
#: Node kinds an activation can be fused into (the activation is their write-back's last stage).
_FUSABLE = ("conv", "fc", "pool", "add", "mul")


def load_model(path_or_model):
    """An ``onnx.ModelProto`` from a path or a model; raises ImportError_ when it is not a
    valid ONNX model."""
    import onnx
    if isinstance(path_or_model, onnx.ModelProto):
        model = path_or_model
    else:
        path = pathlib.Path(path_or_model)
        try:
            model = onnx.load(str(path))
        except Exception as exc:        # onnx raises DecodeError and friends
            raise ImportError_(f"{path}: not an ONNX model ({exc})") from None
    try:        # inference first: it also types outputs a model declares without a shape
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        onnx.checker.check_model(model)
        return model
    except Exception as exc:
        raise ImportError_(f"the ONNX checker rejects the model: {exc}") from None


def _attrs(node):
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _where(node):
    return f"{node.name or node.output[0]} ({node.op_type})"


class _Importer:
    """Walks the ONNX graph once, building float nodes; then folds, fuses and quantizes."""

    def __init__(self, model, config):
        from onnx import numpy_helper
        self.model, self.config = model, config
        g = model.graph
        self.consts = {t.name: numpy_helper.to_array(t).astype(np.float64)
                       for t in g.initializer}
        for node in g.node:
            if node.op_type == "Constant":
                (value,) = _attrs(node).values()
                self.consts[node.output[0]] = numpy_helper.to_array(value).astype(np.float64)
        self.nodes, self.shapes = [], {}
        # ONNX tensor -> (our tensor, layout): "map" (h, w, c) or "flat" (a CHW-flattened map)
        self.alias = {}
        inputs = [v for v in g.input if v.name not in self.consts]
        if len(inputs) != 1 or len(g.output) != 1:
            raise ImportError_(f"the model must have one input and one output, not "
                               f"{len(inputs)} and {len(g.output)}")
        self.input = inputs[0]
        dims = [d.dim_value if d.HasField("dim_value") else 1
                for d in self.input.type.tensor_type.shape.dim]
        if len(dims) == 4 and dims[0] == 1:
            shape = (dims[2], dims[3], dims[1])
        elif len(dims) == 2 and dims[0] == 1:
            shape = (1, 1, dims[1])
        else:
            raise ImportError_(f"input {self.input.name}: shape {dims}; the machine takes "
                               f"[1, C, H, W] or [1, K] (batch 1)")
        self.input_shape = tuple(dims)
        self.shapes[self.input.name] = shape
        self.alias[self.input.name] = (self.input.name, "map" if len(dims) == 4 else "flat")

    # -- helpers ---------------------------------------------------------------------------

    def const(self, node, name, what):
        if name not in self.consts:
            raise ImportError_(f"{_where(node)}: {what} ({name}) must be a constant")
        return self.consts[name]

    def tensor(self, node, name):
        """(our tensor, layout) of an ONNX input of ``node``."""
        if name in self.consts:
            raise ImportError_(f"{_where(node)}: a constant operand ({name}) is not supported "
                               f"here")
        if name not in self.alias:
            raise ImportError_(f"{_where(node)}: input {name} comes from an unsupported node")
        return self.alias[name]

    def feature_map(self, node, name):
        t, layout = self.tensor(node, name)
        if layout != "map":
            raise ImportError_(f"{_where(node)}: takes a feature map, {name} is flattened")
        return t

    def add(self, kind, node, inputs, attrs, shape):
        out = node.output[0]
        self.nodes.append(Node(kind, node.name or out, list(inputs), out, attrs))
        self.shapes[out] = shape
        self.alias[out] = (out, "map")
        return out

    @staticmethod
    def need(node, attrs, name, ok, default, what):
        value = attrs.get(name, default)
        if not ok(value):
            raise ImportError_(f"{_where(node)}: {name}={value!r} is not supported ({what})")
        return value

    def window(self, node, a, kernel, shape):
        """(stride, pads) of a conv or pool window, from strides, pads, auto_pad, ceil_mode."""
        h, w, _ = shape
        strides = a.get("strides", [1, 1])
        if len(kernel) != 2 or len(strides) != 2 or strides[0] != strides[1]:
            raise ImportError_(f"{_where(node)}: kernel {list(kernel)} strides {list(strides)}:"
                               f" the machine runs 2-D windows with one stride")
        self.need(node, a, "dilations", lambda v: list(v) == [1, 1], [1, 1], "dilation 1 only")
        stride = strides[0]
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for n, k in ((h, kernel[0]), (w, kernel[1])):
                total = max(0, (-(-n // stride) - 1) * stride + k - n)
                pads.append((total // 2, total - total // 2) if auto == "SAME_UPPER"
                            else (total - total // 2, total // 2))
            top, left, bottom, right = pads[0][0], pads[1][0], pads[0][1], pads[1][1]
        elif auto in ("NOTSET", "VALID"):
            top, left, bottom, right = a.get("pads", [0, 0, 0, 0]) if auto == "NOTSET" \
                else (0, 0, 0, 0)
        else:
            raise ImportError_(f"{_where(node)}: auto_pad={auto} is not supported")
        if a.get("ceil_mode", 0):
            for n, k, lo, hi, side in ((h, kernel[0], top, bottom, "h"),
                                       (w, kernel[1], left, right, "w")):
                full = -(-(n + lo + hi - k) // stride) + 1
                if (full - 1) * stride >= n + lo:      # a window starting past the input
                    full -= 1
                extra = (full - 1) * stride + k - (n + lo + hi)
                if side == "h":
                    bottom += max(0, extra)
                else:
                    right += max(0, extra)
        if min(top, left, bottom, right) < 0:
            raise ImportError_(f"{_where(node)}: negative padding is not supported")
        return stride, (int(top), int(left), int(bottom), int(right))

    # -- operators -------------------------------------------------------------------------

    def op_Conv(self, node, a):
        x = self.feature_map(node, node.input[0])
        wt = self.const(node, node.input[1], "the weights")
        bias = (self.const(node, node.input[2], "the bias") if len(node.input) > 2
                and node.input[2] else np.zeros(wt.shape[0]))
        self.need(node, a, "group", lambda v: v == 1, 1, "no grouped convolution")
        if wt.ndim != 4:
            raise ImportError_(f"{_where(node)}: a {wt.ndim - 2}-D convolution; the machine "
                               f"runs 2-D ones")
        stride, pads = self.window(node, a, wt.shape[2:], self.shapes[x])
        h, w, _ = self.shapes[x]
        oh = (h + pads[0] + pads[2] - wt.shape[2]) // stride + 1
        ow = (w + pads[1] + pads[3] - wt.shape[3]) // stride + 1
        self.add("conv", node, [x], dict(weights=wt, bias=bias, stride=stride, pads=pads,
                                         act=Act.NONE), (oh, ow, wt.shape[0]))

    def op_BatchNormalization(self, node, a):
        x = self.feature_map(node, node.input[0])
        gamma, beta, mean, var = (self.const(node, n, what) for n, what in zip(
            node.input[1:5], ("scale", "B", "mean", "var")))
        self.need(node, a, "training_mode", lambda v: v == 0, 0, "inference only")
        self.add("bn", node, [x], dict(scale=gamma / np.sqrt(var + a.get("epsilon", 1e-5)),
                                       beta=beta, mean=mean), self.shapes[x])

    def _fc(self, node, x_name, wt, bias):
        """An FC layer ``y = wt @ x + bias`` with ``wt`` (n_out, K) over ``x`` in ONNX's flat
        order."""
        x, layout = self.tensor(node, x_name)
        h, w, c = self.shapes[x]
        if wt.shape[1] != h * w * c:
            raise ImportError_(f"{_where(node)}: weights take {wt.shape[1]} inputs, the input "
                               f"has {h * w * c}")
        if layout == "flat" and h * w > 1:      # CHW order -> the machine's HWC order
            wt = wt.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(wt.shape[0], -1)
        out = self.add("fc", node, [x], dict(weights=wt, bias=bias, act=Act.NONE),
                       (1, 1, wt.shape[0]))
        self.alias[out] = (out, "flat")

    def op_Gemm(self, node, a):
        self.need(node, a, "transA", lambda v: v == 0, 0, "the input is a row vector")
        wt = self.const(node, node.input[1], "the weights")
        wt = wt if a.get("transB", 0) else wt.T
        bias = (self.const(node, node.input[2], "the bias").reshape(-1) if len(node.input) > 2
                and node.input[2] else np.zeros(wt.shape[0]))
        if bias.size == 1:
            bias = np.full(wt.shape[0], bias[0])
        self._fc(node, node.input[0], wt * a.get("alpha", 1.0), bias * a.get("beta", 1.0))

    def op_MatMul(self, node, a):
        wt = self.const(node, node.input[1], "the weights")
        if wt.ndim != 2:
            raise ImportError_(f"{_where(node)}: a {wt.ndim}-D weight; FC takes a matrix")
        self._fc(node, node.input[0], wt.T, np.zeros(wt.shape[1]))

    def _act(self, node, act):
        x, layout = self.tensor(node, node.input[0])
        out = self.add("act", node, [x], dict(act=act), self.shapes[x])
        self.alias[out] = (out, layout)

    def op_Relu(self, node, a):
        self._act(node, Act.RELU)

    def op_Sigmoid(self, node, a):
        self._act(node, Act.SIGMOID)

    def op_Tanh(self, node, a):
        self._act(node, Act.TANH)

    def _pool(self, node, a, kind):
        x = self.feature_map(node, node.input[0])
        kernel = a.get("kernel_shape")
        self.need(node, a, "storage_order", lambda v: v == 0, 0, "row major only")
        stride, pads = self.window(node, a, kernel, self.shapes[x])
        if kind == "avg" and any(pads) and not a.get("count_include_pad", 0):
            raise ImportError_(f"{_where(node)}: an average pool with padding that excludes "
                               f"the padding from the count; the machine divides by the whole "
                               f"window (count_include_pad=1), pads {list(pads)}")
        h, w, c = self.shapes[x]
        oh = (h + pads[0] + pads[2] - kernel[0]) // stride + 1
        ow = (w + pads[1] + pads[3] - kernel[1]) // stride + 1
        self.add("pool", node, [x], dict(kind=kind, kernel=tuple(kernel), stride=stride,
                                         pads=pads, act=Act.NONE), (oh, ow, c))

    def op_MaxPool(self, node, a):
        if len(node.output) > 1 and node.output[1]:
            raise ImportError_(f"{_where(node)}: the Indices output is not supported")
        self._pool(node, a, "max")

    def op_AveragePool(self, node, a):
        self._pool(node, a, "avg")

    def _global(self, node, kind):
        x = self.feature_map(node, node.input[0])
        h, w, c = self.shapes[x]
        self.add("pool", node, [x], dict(kind=kind, kernel=(h, w), stride=1,
                                         pads=(0, 0, 0, 0), act=Act.NONE), (1, 1, c))

    def op_GlobalAveragePool(self, node, a):
        self._global(node, "avg")

    def op_GlobalMaxPool(self, node, a):
        self._global(node, "max")

    def op_Add(self, node, a):
        if node.input[1] in self.consts or node.input[0] in self.consts:
            self._add_constant(node)
            return
        self._binary(node, "add")

    def _add_constant(self, node):
        """A constant added to an FC's output (MatMul then Add): its bias."""
        x_name, c_name = ((node.input[0], node.input[1]) if node.input[1] in self.consts
                          else (node.input[1], node.input[0]))
        x, _ = self.tensor(node, x_name)
        prod = next((n for n in self.nodes if n.output == x), None)
        value = self.consts[c_name].reshape(-1)
        readers = sum(x_name in n.input for n in self.model.graph.node)
        if (prod is None or prod.kind != "fc" or prod.act != Act.NONE
                or value.size not in (1, prod.attrs["bias"].size) or readers != 1):
            raise ImportError_(f"{_where(node)}: adding a constant is supported only as the "
                               f"bias of a MatMul / Gemm whose only reader it is")
        prod.attrs["bias"] = prod.attrs["bias"] + value
        self.alias[node.output[0]] = self.alias[x_name]

    def _binary(self, node, kind):
        (x, la), (y, lb) = (self.tensor(node, n) for n in node.input[:2])
        if self.shapes[x] != self.shapes[y] or la != lb:
            raise ImportError_(f"{_where(node)}: operands of different shapes "
                               f"{self.shapes[x]} and {self.shapes[y]} (no broadcasting)")
        out = self.add(kind, node, [x, y], dict(act=Act.NONE), self.shapes[x])
        self.alias[out] = (out, la)

    def op_Mul(self, node, a):
        if node.input[1] in self.consts or node.input[0] in self.consts:
            raise ImportError_(f"{_where(node)}: multiplying by a constant is not supported")
        self._binary(node, "mul")

    def op_Concat(self, node, a):
        xs = [self.tensor(node, n) for n in node.input]
        layouts = {layout for _, layout in xs}
        axis = a.get("axis")
        if not ((layouts == {"map"} and axis in (1, -3))
                or (layouts == {"flat"} and axis in (1, -1)
                    and all(self.shapes[t][:2] == (1, 1) for t, _ in xs))):
            raise ImportError_(f"{_where(node)}: concatenation on axis {axis}; the machine "
                               f"concatenates channels")
        names = [t for t, _ in xs]
        shapes = [self.shapes[t] for t in names]
        out = self.add("concat", node, names, {}, (*shapes[0][:2], sum(s[2] for s in shapes)))
        self.alias[out] = (out, layouts.pop())

    def op_Flatten(self, node, a):
        self.need(node, a, "axis", lambda v: v == 1, 1, "flattening all but the batch")
        x, _ = self.tensor(node, node.input[0])
        self.alias[node.output[0]] = (x, "flat")

    def op_Reshape(self, node, a):
        target = self.const(node, node.input[1], "the shape").astype(np.int64).tolist()
        x, _ = self.tensor(node, node.input[0])
        h, w, c = self.shapes[x]
        if len(target) != 2 or target[0] not in (1, 0) or target[1] not in (-1, h * w * c):
            raise ImportError_(f"{_where(node)}: reshape to {target}; only flattening to "
                               f"[1, {h * w * c}] before an FC is supported")
        self.alias[node.output[0]] = (x, "flat")

    def op_Dropout(self, node, a):
        if len(node.output) > 1 and node.output[1] and any(
                node.output[1] in n.input for n in self.model.graph.node):
            raise ImportError_(f"{_where(node)}: the dropout mask is used")
        self.alias[node.output[0]] = self.tensor(node, node.input[0])

    def op_Identity(self, node, a):
        self.alias[node.output[0]] = self.tensor(node, node.input[0])

    def op_Constant(self, node, a):
        pass

    # -- the whole graph -------------------------------------------------------------------

    def run(self, name):
        for node in self.model.graph.node:
            handler = getattr(self, f"op_{node.op_type}", None)
            if handler is None or node.domain not in ("", "ai.onnx"):
                raise ImportError_(f"{_where(node)}: operator {node.op_type} is not supported "
                                   f"(supported: {', '.join(_SUPPORTED)})")
            handler(node, _attrs(node))
        out_name = self.model.graph.output[0].name
        out, layout = self.tensor(self.model.graph.node[-1], out_name)
        self._fold_batchnorm(out)
        self._fuse_activations(out)
        if out == self.input.name:
            raise ImportError_("the model computes nothing: its output is its input")
        graph = Graph(name, self.input.name, self.nodes, out, self.shapes)
        stats = self._quantize()
        graph.check()
        return Imported(graph, self.model, self.input.name, self.input_shape, out_name,
                        "flat" if layout == "flat" else "nchw", stats)

    def _readers(self, tensor):
        return [n for n in self.nodes if tensor in n.inputs]

    def _replace(self, old, new):
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]

    def _fold_batchnorm(self, out):
        for bn in [n for n in self.nodes if n.kind == "bn"]:
            conv = next((n for n in self.nodes if n.output == bn.inputs[0]), None)
            if (conv is None or conv.kind != "conv" or len(self._readers(conv.output)) != 1
                    or conv.output == out):
                raise ImportError_(f"{bn.name} (BatchNormalization): only a BatchNormalization "
                                   f"right after a convolution it alone reads can be folded")
            s, a = bn.attrs["scale"], conv.attrs
            a["weights"] = a["weights"] * s[:, None, None, None]
            a["bias"] = (a["bias"] - bn.attrs["mean"]) * s + bn.attrs["beta"]
            conv.name = f"{conv.name}+{bn.name}"
            self._rename(bn.output, conv)

    def _fusable(self, tensor, out):
        """The nodes an activation of ``tensor`` can be fused into (its producer, or every
        producer of a concatenation), or None."""
        prod = next((n for n in self.nodes if n.output == tensor), None)
        if prod is None or len(self._readers(tensor)) != 1 or tensor == out:
            return None
        if prod.kind == "concat":
            parts = [self._fusable(t, out) for t in prod.inputs]
            return None if None in parts else [n for p in parts for n in p]
        return [prod] if prod.kind in _FUSABLE and prod.act == Act.NONE else None

    def _fuse_activations(self, out):
        """An activation becomes the write-back stage of the layer before it (of every layer
        writing a concatenation it reads)."""
        for act in [n for n in self.nodes if n.kind == "act"]:
            targets = self._fusable(act.inputs[0], out)
            if targets is None:
                continue
            for prod in targets:
                prod.attrs["act"] = act.act
                prod.name = f"{prod.name}+{act.name}"
            prod = next(n for n in self.nodes if n.output == act.inputs[0])
            self._rename(act.output, prod)

    def _rename(self, old_output, node):
        """``node`` now produces ``old_output`` (a node fused into it disappears)."""
        self.nodes = [n for n in self.nodes if n.output != old_output]
        self._replace(node.output, old_output)
        del self.shapes[node.output]
        node.output = old_output

    def _quantize(self):
        """Biases to the activations' fixed point; each layer's weights to as many more
        fraction bits (``w_shift``, at most 15) as its largest weight leaves room for."""
        f = self.config.frac_bits
        stats = {"weights": 0, "saturated": 0, "zero": 0}
        for n in self.nodes:
            if "weights" not in n.attrs:
                continue
            w, b = n.attrs["weights"], n.attrs["bias"]
            n.attrs["w_shift"] = shift = weight_shift(w, f)
            qw, qb = to_fixed(w, f + shift), to_fixed(b, f)
            stats["weights"] += w.size
            stats["zero"] += int(np.count_nonzero((qw == 0) & (w != 0)))
            stats["saturated"] += int(np.count_nonzero(np.abs(w) * (1 << (f + shift))
                                                       >= (1 << 15)))
            stats["saturated"] += int(np.count_nonzero(np.abs(b) * (1 << f) >= (1 << 15)))
            n.attrs["weights"], n.attrs["bias"] = qw, qb
        return stats


_SUPPORTED = sorted(name[3:] for name in vars(_Importer) if name.startswith("op_")
                    and name != "op_Constant")


def weight_shift(weights, frac_bits, most=15):
    """The extra fraction bits a layer's weights take: the most (up to ``most``) that keep its
    largest weight inside int16."""
    top = float(np.abs(weights).max()) if np.size(weights) else 0.0
    shift = 0
    while shift < most and top * (1 << (frac_bits + shift + 1)) < (1 << 15) - 1:
        shift += 1
    return shift


def import_onnx(model, config, name=None):
    """Import ``model`` (a path or an ``onnx.ModelProto``) for ``config``; returns an
    :class:`Imported`. Raises :class:`ImportError_` naming the node it cannot map."""
    model = load_model(model)
    name = name or model.graph.name or "model"
    return _Importer(model, config).run(name)


def quantize_input(imported, x, config):
    """The float input ``x`` (the ONNX input's shape) as the machine's (h, w, c) int16."""
    x = np.asarray(x, dtype=np.float64)
    if tuple(x.shape) != tuple(imported.input_shape):
        raise ValueError(f"the input must have shape {list(imported.input_shape)}, not "
                         f"{list(x.shape)}")
    hwc = x[0].transpose(1, 2, 0) if x.ndim == 4 else x.reshape(1, 1, -1)
    return to_fixed(hwc, config.frac_bits)


def output_values(imported, y, config):
    """The machine's (h, w, c) int16 output as float values in the ONNX output's order."""
    y = from_fixed(y, config.frac_bits)
    return y.transpose(2, 0, 1).reshape(1, -1) if imported.output_layout == "flat" \
        else y.transpose(2, 0, 1)[None]


def float_reference(imported, x):
    """The float model's output for the float input ``x``, by ``onnx.reference``."""
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(imported.model).run(
        [imported.output_name], {imported.input_name: np.asarray(x, dtype=np.float32)})[0]
