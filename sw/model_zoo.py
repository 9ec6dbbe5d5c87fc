"""The paper's four static CNNs as ONNX graphs, built here with ``onnx.helper`` and seeded
random float32 weights (batch 1, opset 17; nothing is downloaded).

* :func:`alexnet`: AlexNet (Krizhevsky et al. 2012) as one tower at the original widths, the
  two GPUs' halves merged and without grouped convolution: 227x227 input, conv1 96 11x11/4,
  conv2 256 5x5 (Table 2's Conv1), conv3 384, conv4 384, conv5 256, three 3x3/2 max pools,
  fc6 4096, fc7 4096 (Table 2's FC2), fc8; Dropout before fc6 and fc7. LRN is left out.
* :func:`resnet18`: ResNet-18 (He et al. 2016) in torchvision's layout, each convolution
  followed by its own (unfolded) BatchNormalization node; its stem max pool (64 ch, 112x112)
  is Table 2's Pool1 and its classifier (1000 x 512) FC1.
* :func:`googlenet`: GoogLeNet, Inception v1 as published (Szegedy et al. 2015, Table 1):
  5x5 branches, no BatchNorm, Caffe's ceil-mode max pools; Table 2's Conv2 (conv2/3x3),
  Pool3 (inception_4e/pool) and FC3 (the 1000 x 1024 classifier). The auxiliary classifiers
  and LRN are left out.
* :func:`squeezenet`: SqueezeNet 1.0 (Iandola et al. 2016) in torchvision's ``squeezenet1_0``
  topology; pool8, the max pool after fire8 (input 512 x 27 x 27), is Table 2's Pool2.

Every builder takes keyword parameters: ``seed`` (of ``numpy.random.default_rng``, which draws
every weight), ``input_size`` (the side of the square input), ``width`` (a divisor: every
channel count and hidden FC width ``c`` becomes ``max(4, ceil(c / width / 4) * 4)``; or a
function of ``c``) and ``num_classes``. The defaults give the paper's network.

Input ``"input"`` is float32 ``[1, 3, S, S]``, output ``"output"`` float32 ``[1, classes]``.
Conv and Gemm weights are He-style uniform, U(-a, a) with a = gain * sqrt(6 / fan_in), each
output's weights then shifted to sum to zero; biases U(-0.05, 0.05); BatchNormalization near
identity. The per-network gain is chosen so that, for an input uniform in [-1, 1), every
activation stays below 64 in magnitude (the machine computes in 16-bit fixed point with 8
fraction bits) and every ReLU output averages well above 1/256.

:func:`count_macs` and :func:`weight_count` give a model's size as the design brief counts it;
:func:`activations` evaluates every tensor of a model with ``onnx.reference``.

:func:`build` names the paper networks (``variant="paper"``) and their scaled-down twins
(``variant="small"``): the same nodes, kernels, strides, pads and ceil modes, channels and FC
widths divided by 8 (multiples of 4, at least 4), 125 classes, and a small input:

=========== ======= ===================================================================
network     input   spatial sides
=========== ======= ===================================================================
alexnet     67x67   conv1 15, pool1 7, pool2 3, pool5 1
resnet18    32x32   conv1 16, maxpool 8, layer2 4, layer3 2, layer4 1
googlenet   64x64   conv1 32, pools 16, 8, 4, 2; the final AveragePool is 2x2
squeezenet  47x47   conv1 21, pools 10, 5, 2 (ceil-mode overhang at the same pool as on
                    paper); the global average pool is 2x2
=========== ======= ===================================================================

GoogLeNet's final AveragePool takes the whole final feature map (7x7 on paper), so it is the
one attribute where the two variants differ. The small GoogLeNet is 64x64 rather than 32x32 so
that every 3x3 max pool window fits its input (at 32 the last one would see a 2x2 map).
"""

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

from .tensor import out_size

__all__ = ["NETWORKS", "alexnet", "resnet18", "googlenet", "squeezenet", "build",
           "count_macs", "weight_count", "activations"]

NETWORKS = ("alexnet", "resnet18", "googlenet", "squeezenet")
_OPSET = 17
_SMALL_INPUT = {"alexnet": 67, "resnet18": 32, "googlenet": 64, "squeezenet": 47}
_SMALL_WIDTH, _SMALL_CLASSES = 8, 125
# Weights centred per output pass on their input's variance but not its mean, so a chain of
# conv + ReLU keeps its scale at gain 1 / sqrt(2 * 0.34) = 1.21 (0.34: the variance of a
# ReLU of a unit normal); ResNet's additions grow the scale, so it gets less. The values were
# measured against the range the module docstring states (tests/test_model_zoo.py checks).
_GAIN = {"alexnet": 1.25, "resnet18": 1.0, "googlenet": 1.25, "squeezenet": 1.25}


def _scaler(width):
    """``width``: a divisor (channels -> max(4, c / width rounded up to a multiple of 4)) or
    a function of the channel count."""
    if callable(width):
        return width
    if not width > 0:
        raise ValueError(f"width must be a positive divisor or a function, not {width!r}")
    return lambda c: max(4, 4 * math.ceil(c / width / 4))


class _Net:
    """A graph under construction: nodes and initializers appended in order, the current
    tensor ``x`` and the ``(channels, side)`` of every tensor.

    Each layer method names its node and output tensor ``name``, reads ``x`` (or the tensor
    given), makes its output current and returns its name."""

    def __init__(self, seed, size, width, gain):
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"input_size must be a positive integer, not {size!r}")
        self.rng, self.ch, self.gain = np.random.default_rng(seed), _scaler(width), gain
        self.nodes, self.inits = [], []
        self.shape = {"input": (3, size)}
        self.x = "input"

    def _node(self, op, name, inputs, shape, **attrs):
        if shape[1] < 1:
            raise ValueError(f"{name}: a {self.shape['input'][1]}x{self.shape['input'][1]} "
                             f"input is too small (this layer's output side is {shape[1]})")
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        self.shape[name], self.x = shape, name
        return name

    def _param(self, name, shape, low, high):
        r = self.rng.random(shape, dtype=np.float32)
        self.inits.append(numpy_helper.from_array(r * np.float32(high - low) + np.float32(low),
                                                  name))
        return name

    def _weight(self, name, shape):
        """He-style uniform, each output's weights shifted to sum to zero: a narrow layer fed
        by ReLUs (all positive) then has no channel that is dead for every input."""
        a = np.float32(self.gain * np.sqrt(6.0 / np.prod(shape[1:])))
        w = self.rng.random(shape, dtype=np.float32) * (2 * a) - a
        w -= w.mean(axis=tuple(range(1, len(shape))), keepdims=True)
        self.inits.append(numpy_helper.from_array(w, name))
        return name

    def conv(self, name, cout, k, stride=1, pad=0, bias=True, scale=True, x=None):
        """``scale``: ``cout`` is a channel count the width scales (not a class count)."""
        x = x or self.x
        cin, side = self.shape[x]
        cout = self.ch(cout) if scale else cout
        inputs = [x, self._weight(f"{name}.weight", (cout, cin, k, k))]
        if bias:
            inputs.append(self._param(f"{name}.bias", (cout,), -0.05, 0.05))
        return self._node("Conv", name, inputs, (cout, out_size(side + 2 * pad, k, stride)),
                          kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)

    def bn(self, name):
        c = self.shape[self.x][0]
        inputs = [self.x] + [self._param(f"{name}.{p}", (c,), lo, hi) for p, lo, hi in (
            ("weight", 0.8, 1.2), ("bias", -0.05, 0.05), ("running_mean", -0.05, 0.05),
            ("running_var", 0.8, 1.2))]
        return self._node("BatchNormalization", name, inputs, self.shape[self.x],
                          epsilon=1e-5)

    def relu(self, name, x=None):
        x = x or self.x
        return self._node("Relu", name, [x], self.shape[x])

    def maxpool(self, name, k, stride, pad=0, ceil=False, x=None):
        x = x or self.x
        c, side = self.shape[x]
        out = out_size(side + 2 * pad + (stride - 1 if ceil else 0), k, stride)
        return self._node("MaxPool", name, [x], (c, out), kernel_shape=[k, k],
                          strides=[stride, stride], pads=[pad] * 4, ceil_mode=int(ceil))

    def avgpool(self, name, k):
        c, side = self.shape[self.x]
        return self._node("AveragePool", name, [self.x], (c, out_size(side, k, 1)),
                          kernel_shape=[k, k], strides=[1, 1], pads=[0] * 4)

    def global_avgpool(self, name):
        return self._node("GlobalAveragePool", name, [self.x], (self.shape[self.x][0], 1))

    def dropout(self, name):
        return self._node("Dropout", name, [self.x], self.shape[self.x])

    def flatten(self, name):
        c, side = self.shape[self.x]
        return self._node("Flatten", name, [self.x], (c * side * side, 1), axis=1)

    def fc(self, name, n_out):
        """A Gemm with a ``[n_out, n_in]`` weight (``transB=1``); ``n_out`` is not scaled."""
        n_in = self.shape[self.x][0]
        inputs = [self.x, self._weight(f"{name}.weight", (n_out, n_in)),
                  self._param(f"{name}.bias", (n_out,), -0.05, 0.05)]
        return self._node("Gemm", name, inputs, (n_out, 1), transB=1)

    def concat(self, name, xs):
        shape = (sum(self.shape[x][0] for x in xs), self.shape[xs[0]][1])
        return self._node("Concat", name, list(xs), shape, axis=1)

    def add(self, name, a, b):
        return self._node("Add", name, [a, b], self.shape[a])

    def model(self, name, doc):
        """The finished model, its last tensor renamed ``"output"``, shapes inferred."""
        self.nodes[-1].output[0] = "output"
        side = self.shape["input"][1]
        graph = helper.make_graph(self.nodes, name, [_value("input", [1, 3, side, side])],
                                  [_value("output", [1, self.shape[self.x][0]])], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)],
                                  producer_name="dypipe.sw.model_zoo", doc_string=doc)
        return shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def _value(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _conv_relu(net, name, cout, k, stride=1, pad=0, x=None):
    return net.relu(f"{name}/relu", net.conv(name, cout, k, stride, pad, x=x))


def alexnet(seed=0, input_size=227, width=1, num_classes=1000):
    """AlexNet, one tower at the original widths (no LRN, no grouped convolution)."""
    net = _Net(seed, input_size, width, _GAIN["alexnet"])
    for i, (cout, k, stride, pad, pool) in enumerate(
            [(96, 11, 4, 0, True), (256, 5, 1, 2, True), (384, 3, 1, 1, False),
             (384, 3, 1, 1, False), (256, 3, 1, 1, True)], start=1):
        _conv_relu(net, f"conv{i}", cout, k, stride, pad)
        if pool:
            net.maxpool(f"pool{i}", 3, 2)
    net.flatten("flatten")
    for layer in ("fc6", "fc7"):
        net.dropout(f"{layer}/drop")
        net.relu(f"{layer}/relu", net.fc(layer, net.ch(4096)))
    net.fc("fc8", num_classes)
    return net.model("alexnet", f"AlexNet (Krizhevsky et al. 2012), one tower without LRN, "
                                f"{input_size}x{input_size} input, seed {seed}")


def resnet18(seed=0, input_size=224, width=1, num_classes=1000):
    """ResNet-18 with unfolded BatchNormalization nodes (torchvision's layout and names)."""
    net = _Net(seed, input_size, width, _GAIN["resnet18"])
    net.conv("conv1", 64, 7, 2, 3, bias=False)
    net.bn("bn1")
    net.relu("relu")
    net.maxpool("maxpool", 3, 2, pad=1)
    for stage, cout in enumerate((64, 128, 256, 512)):
        for block in range(2):
            _basic_block(net, f"layer{stage + 1}.{block}", cout, 2 if stage and not block else 1)
    net.global_avgpool("avgpool")
    net.flatten("flatten")
    net.fc("fc", num_classes)
    return net.model("resnet18", f"ResNet-18 (He et al. 2016), "
                                 f"{input_size}x{input_size} input, seed {seed}")


def _basic_block(net, name, cout, stride):
    x = shortcut = net.x
    net.conv(f"{name}.conv1", cout, 3, stride, 1, bias=False)
    net.bn(f"{name}.bn1")
    net.relu(f"{name}.relu1")
    net.conv(f"{name}.conv2", cout, 3, 1, 1, bias=False)
    y = net.bn(f"{name}.bn2")
    if stride != 1 or net.shape[x][0] != net.shape[y][0]:
        net.conv(f"{name}.downsample.0", cout, 1, stride, bias=False, x=x)
        shortcut = net.bn(f"{name}.downsample.1")
    net.add(f"{name}.add", y, shortcut)
    net.relu(f"{name}.relu2")


# Szegedy et al. 2015, Table 1: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
_INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def googlenet(seed=0, input_size=224, width=1, num_classes=1000):
    """GoogLeNet (Inception v1) as published: 5x5 branches, no BatchNorm, no auxiliary
    classifiers, no LRN; Caffe's ceil-mode max pools and layer names."""
    net = _Net(seed, input_size, width, _GAIN["googlenet"])
    _conv_relu(net, "conv1/7x7_s2", 64, 7, 2, 3)
    net.maxpool("pool1/3x3_s2", 3, 2, ceil=True)
    _conv_relu(net, "conv2/3x3_reduce", 64, 1)
    _conv_relu(net, "conv2/3x3", 192, 3, pad=1)
    net.maxpool("pool2/3x3_s2", 3, 2, ceil=True)
    for name, channels in _INCEPTION.items():
        _inception(net, f"inception_{name}", *channels)
        if name in ("3b", "4e"):
            net.maxpool(f"pool{name[0]}/3x3_s2", 3, 2, ceil=True)
    net.avgpool("pool5", net.shape[net.x][1])
    net.dropout("pool5/drop")
    net.flatten("flatten")
    net.fc("loss3/classifier", num_classes)
    return net.model("googlenet", f"GoogLeNet (Szegedy et al. 2015) without auxiliary "
                                  f"classifiers and LRN, {input_size}x{input_size} input, "
                                  f"seed {seed}")


def _inception(net, name, c1, r3, c3, r5, c5, proj):
    x = net.x
    branches = [_conv_relu(net, f"{name}/1x1", c1, 1, x=x)]
    _conv_relu(net, f"{name}/3x3_reduce", r3, 1, x=x)
    branches.append(_conv_relu(net, f"{name}/3x3", c3, 3, pad=1))
    _conv_relu(net, f"{name}/5x5_reduce", r5, 1, x=x)
    branches.append(_conv_relu(net, f"{name}/5x5", c5, 5, pad=2))
    net.maxpool(f"{name}/pool", 3, 1, pad=1, x=x)
    branches.append(_conv_relu(net, f"{name}/pool_proj", proj, 1))
    net.concat(f"{name}/output", branches)


def squeezenet(seed=0, input_size=224, width=1, num_classes=1000):
    """SqueezeNet 1.0 (torchvision's ``squeezenet1_0`` topology, Caffe's layer names)."""
    net = _Net(seed, input_size, width, _GAIN["squeezenet"])
    _conv_relu(net, "conv1", 96, 7, 2)
    net.maxpool("pool1", 3, 2, ceil=True)
    fires = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256),
             (64, 256)]
    for i, (squeeze, expand) in enumerate(fires, start=2):
        _fire(net, f"fire{i}", squeeze, expand)
        if i in (4, 8):
            net.maxpool(f"pool{i}", 3, 2, ceil=True)
    net.dropout("drop9")
    net.conv("conv10", num_classes, 1, scale=False)
    net.relu("conv10/relu")
    net.global_avgpool("pool10")
    net.flatten("flatten")
    return net.model("squeezenet", f"SqueezeNet 1.0 (Iandola et al. 2016), "
                                   f"{input_size}x{input_size} input, seed {seed}")


def _fire(net, name, squeeze, expand):
    _conv_relu(net, f"{name}/squeeze1x1", squeeze, 1)
    x = net.x
    e1 = _conv_relu(net, f"{name}/expand1x1", expand, 1, x=x)
    e3 = _conv_relu(net, f"{name}/expand3x3", expand, 3, pad=1, x=x)
    net.concat(f"{name}/concat", [e1, e3])


def build(name, variant="paper", seed=0):
    """Network ``name`` (one of :data:`NETWORKS`) as published (``"paper"``) or its
    scaled-down twin (``"small"``, see the module docstring)."""
    if name not in NETWORKS:
        raise ValueError(f"network must be one of {', '.join(NETWORKS)}, not {name!r}")
    if variant not in ("paper", "small"):
        raise ValueError(f"variant must be 'paper' or 'small', not {variant!r}")
    builder = globals()[name]
    if variant == "paper":
        return builder(seed=seed)
    return builder(seed=seed, input_size=_SMALL_INPUT[name], width=_SMALL_WIDTH,
                   num_classes=_SMALL_CLASSES)


def count_macs(model):
    """Multiply-accumulates of one inference: a Conv counts its output elements times
    ``cin / group * kh * kw``, a Gemm ``M * N * K``; other nodes count nothing."""
    shapes = _shapes(shape_inference.infer_shapes(model))
    total = 0
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm"):
            w, outputs = shapes[node.input[1]], int(np.prod(shapes[node.output[0]]))
            if node.op_type == "Conv":
                total += outputs * int(np.prod(w[1:]))
            else:
                total += outputs * (w[1] if _attr(node, "transB", 0) else w[0])
    return total


def weight_count(model):
    """Parameters, each BatchNormalization counted as folded into the convolution before it:
    its own four vectors count nothing, but a convolution without a bias gains one."""
    size = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    total = 0
    for node in model.graph.node:
        conv = producer.get(node.input[0])
        if node.op_type != "BatchNormalization":
            total += sum(size.get(name, 0) for name in node.input)
        elif conv is not None and conv.op_type == "Conv" and len(conv.input) < 3:
            total += size[node.input[1]]
    return total


def activations(model, x):
    """Every node's output for the input ``x``, by tensor name, evaluated by
    ``onnx.reference.ReferenceEvaluator`` on a copy with every tensor made a graph output."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    outputs = {v.name for v in probe.graph.output}
    probe.graph.output.extend(_value(out, None) for node in probe.graph.node
                              for out in node.output if out not in outputs)
    names = [v.name for v in probe.graph.output]
    return dict(zip(names, ReferenceEvaluator(probe).run(None, {"input": x})))


def _shapes(model):
    """Tensor name -> shape (a tuple of ints) for the initializers and every typed value."""
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    for v in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        shapes[v.name] = tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
    return shapes


def _attr(node, name, default):
    found = [a for a in node.attribute if a.name == name]
    return helper.get_attribute_value(found[0]) if found else default
