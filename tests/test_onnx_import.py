"""The ONNX importer (dypipe.sw.onnx_import) and the graph compiler (dypipe.sw.network): what
each ONNX construct becomes, exact where the model's numbers are exact in fixed point, and a
clear error naming the node for everything the machine cannot run."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dypipe.config import PRESETS
from dypipe.sw.golden import from_fixed
from dypipe.sw.network import compile_graph, output_of
from dypipe.sw.onnx_import import (ImportError_, float_reference, import_onnx, output_values,
                                   quantize_input)
from dypipe.sw.workload import CompileError

SMALL = PRESETS["small"]


class Model:
    """A tiny ONNX graph under construction: ``add(op, inputs, **attrs)`` appends a node whose
    output is named after it; ``const`` adds an initializer."""

    def __init__(self, shape):
        self.shape, self.nodes, self.inits, self.n = shape, [], [], 0

    def const(self, value, dtype=np.float32):
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def add(self, op, inputs, name=None, outputs=1, **attrs):
        self.n += 1
        name = name or f"{op.lower()}{self.n}"
        outs = [name] + [f"{name}.{i}" for i in range(1, outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name, **attrs))
        return name

    def build(self, output):
        self.nodes[-1].output[0] = "y"
        graph = helper.make_graph(
            self.nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, self.shape)],
            [onnx.ValueInfoProto(name="y")], self.inits)    # the importer infers its type
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _exact_input(shape, seed=0, bound=2):
    """Inputs that are exact in fixed point (multiples of 1/256 in [-bound, bound))."""
    return np.random.default_rng(seed).integers(-256 * bound, 256 * bound, shape) / 256.0


def _golden_output(imported, x, mode="dypipe"):
    """The compiled network's golden output for the float input ``x``, dequantized, in the
    ONNX output's layout (no RTL: the expected values the runner checks)."""
    q = quantize_input(imported, x, SMALL)
    wl = compile_graph(SMALL, imported.graph, q, mode)
    outputs = {name: values for name, values in wl.expected.items()}
    return output_values(imported, output_of(wl, outputs), SMALL)


def test_conv_bn_relu_pool_flatten_gemm_is_exact():
    """Integer weights and a BatchNormalization that folds to integers keep every value exact
    in fixed point, so the golden model must equal the float model bit for bit: this checks the
    folding, the padding, ceil mode, the fused activations and the CHW -> HWC reordering of
    the FC weights after Flatten."""
    rng = np.random.default_rng(1)
    m = Model([1, 3, 5, 6])
    w = rng.integers(-2, 3, (4, 3, 3, 3)).astype(np.float32)
    conv = m.add("Conv", ["x", m.const(w), m.const([1, -1, 0, 2])], kernel_shape=[3, 3],
                 pads=[1, 1, 1, 1])
    bn = m.add("BatchNormalization", [conv, m.const([2, 1, 1, 2]), m.const([0, 1, 0, 0]),
                                      m.const([0, 0, 1, 0]), m.const([1, 1, 1, 1])],
               epsilon=0.0)
    pool = m.add("MaxPool", [m.add("Relu", [bn])], kernel_shape=[2, 2], strides=[2, 2],
                 ceil_mode=1)
    flat = m.add("Flatten", [pool], axis=1)
    gemm = m.add("Gemm", [flat, m.const(rng.integers(-1, 2, (5, 4 * 3 * 3))),
                          m.const(np.arange(5))], transB=1)
    imported = import_onnx(m.build(gemm), SMALL)
    kinds = [n.kind for n in imported.graph.nodes]
    assert kinds == ["conv", "pool", "fc"], kinds       # BN and ReLU folded into the conv
    assert imported.graph.nodes[1].attrs["pads"] == (0, 0, 1, 0)   # ceil mode: 5 -> 3 rows
    x = _exact_input([1, 3, 5, 6], bound=1)
    np.testing.assert_array_equal(_golden_output(imported, x), float_reference(imported, x))


def test_residual_add_concat_global_pool_are_exact():
    m = Model([1, 4, 4, 4])
    rng = np.random.default_rng(2)
    a = m.add("Conv", ["x", m.const(rng.integers(-1, 2, (4, 4, 1, 1)))], kernel_shape=[1, 1])
    b = m.add("Relu", [m.add("Add", [a, "x"])])
    c = m.add("Conv", [b, m.const(rng.integers(-1, 2, (8, 4, 3, 3)))], kernel_shape=[3, 3],
              pads=[1, 1, 1, 1])
    d = m.add("Concat", [c, m.add("Conv", [b, m.const(np.ones((4, 4, 1, 1)))],
                                  kernel_shape=[1, 1])], axis=1)
    g = m.add("GlobalAveragePool", [m.add("Relu", [d])])
    imported = import_onnx(m.build(g), SMALL)
    # The ReLU after the concatenation becomes both convolutions' write-back.
    assert [n.kind for n in imported.graph.nodes] == ["conv", "add", "conv", "conv", "concat",
                                                      "pool"]
    x = _exact_input([1, 4, 4, 4], seed=3)
    got, ref = _golden_output(imported, x), float_reference(imported, x)
    # The average divides by 16 with the vector unit's rounded multiplier: within one step.
    assert np.abs(got - ref).max() <= 1 / 256, (got, ref)


def test_matmul_then_add_is_an_fc_with_bias():
    m = Model([1, 6])
    mm = m.add("MatMul", ["x", m.const(np.arange(18).reshape(6, 3) % 3 - 1)])
    out = m.add("Add", [mm, m.const([1, 2, 3])])
    imported = import_onnx(m.build(out), SMALL)
    (node,) = imported.graph.nodes
    assert node.kind == "fc" and list(from_fixed(node.attrs["bias"], 8)) == [1, 2, 3]
    x = _exact_input([1, 6])
    np.testing.assert_array_equal(_golden_output(imported, x), float_reference(imported, x))


def test_quantization_counts_saturated_and_vanished_weights():
    m = Model([1, 2])
    out = m.add("Gemm", ["x", m.const([[300.0, 0.001], [1.0, -0.5]])], transB=1)
    q = import_onnx(m.build(out), SMALL).quantization
    assert q == {"weights": 4, "saturated": 1, "zero": 1}


def _unsupported(build):
    m = Model([1, 3, 6, 6])
    node = build(m)
    with pytest.raises(ImportError_) as info:
        import_onnx(m.build(node), SMALL)
    return str(info.value)


@pytest.mark.parametrize("build,says", [
    (lambda m: m.add("Softmax", ["x"], name="prob"), "prob (Softmax): operator Softmax is not "
                                                     "supported"),
    (lambda m: m.add("Conv", ["x", m.const(np.ones((6, 1, 3, 3)))], name="dw",
                     kernel_shape=[3, 3], group=3), "dw (Conv): group=3 is not supported"),
    (lambda m: m.add("Conv", ["x", m.const(np.ones((2, 3, 3, 3)))], name="dil",
                     kernel_shape=[3, 3], dilations=[2, 2]), "dil (Conv): dilations"),
    (lambda m: m.add("Conv", ["x", m.const(np.ones((2, 3, 3, 3)))], name="aniso",
                     kernel_shape=[3, 3], strides=[1, 2]), "aniso (Conv): kernel [3, 3] "
                                                           "strides [1, 2]"),
    (lambda m: m.add("AveragePool", ["x"], name="ap", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
     "ap (AveragePool): an average pool with padding that excludes the padding"),
    (lambda m: m.add("BatchNormalization", ["x"] + [m.const(np.ones(3))] * 4, name="bn"),
     "bn (BatchNormalization): only a BatchNormalization right after a convolution"),
    (lambda m: m.add("Add", ["x", m.const(np.ones((1, 3, 6, 6)))], name="bias"),
     "bias (Add): adding a constant is supported only as the bias of a MatMul / Gemm"),
    (lambda m: m.add("Reshape", ["x", m.const([1, 3, 36], np.int64)], name="r"),
     "r (Reshape): reshape to [1, 3, 36]"),
    (lambda m: m.add("Concat", ["x", "x"], name="cat", axis=2),
     "cat (Concat): concatenation on axis 2"),
    (lambda m: m.add("LRN", ["x"], name="norm1", size=5), "norm1 (LRN): operator LRN"),
])
def test_unsupported_constructs_name_the_node(build, says):
    assert says in _unsupported(build)


def test_batch_must_be_one():
    m = Model([2, 3, 4, 4])
    with pytest.raises(ImportError_, match=r"shape \[2, 3, 4, 4\].*batch 1"):
        import_onnx(m.build(m.add("Relu", ["x"])), SMALL)


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a model")
    with pytest.raises(ImportError_, match="model.onnx: not an ONNX model"):
        import_onnx(path, SMALL)


def _graph_of(build, shape=(1, 8, 4, 4)):
    m = Model(list(shape))
    return import_onnx(m.build(build(m)), SMALL).graph


def test_concat_of_a_tensor_read_elsewhere_is_an_error():
    def build(m):
        a = m.add("Conv", ["x", m.const(np.ones((4, 8, 1, 1)))], kernel_shape=[1, 1])
        b = m.add("Conv", ["x", m.const(np.ones((4, 8, 1, 1)))], kernel_shape=[1, 1])
        return m.add("Add", [m.add("Concat", [a, b], name="cat", axis=1),
                             m.add("Concat", [a, a], axis=1)])
    with pytest.raises(CompileError, match="cat: concatenation is done by layout"):
        compile_graph(SMALL, _graph_of(build), np.zeros((4, 4, 8), np.int16), "dypipe")


def test_concat_slice_off_a_beat_is_an_error():
    def build(m):
        a = m.add("Conv", ["x", m.const(np.ones((3, 8, 1, 1)))], kernel_shape=[1, 1])
        b = m.add("Conv", ["x", m.const(np.ones((4, 8, 1, 1)))], kernel_shape=[1, 1])
        return m.add("Concat", [a, b], name="cat", axis=1)
    with pytest.raises(CompileError, match="cat: input .* would start at channel 3, not on "
                                           "a DRAM beat of 4 channels"):
        compile_graph(SMALL, _graph_of(build), np.zeros((4, 4, 8), np.int16), "dypipe")


def test_one_halo_cannot_pad_with_zero_and_minus_infinity():
    """The input (maybe negative) is padded with zeros by a convolution and with the smallest
    value by a max pool: one stored halo cannot do both."""
    def build(m):
        c = m.add("Conv", ["x", m.const(np.ones((4, 8, 3, 3)))], name="conv",
                  kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        p = m.add("MaxPool", ["x"], name="pool", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        q = m.add("Conv", [p, m.const(np.ones((4, 8, 1, 1)))], kernel_shape=[1, 1])
        return m.add("Add", [c, q])
    with pytest.raises(CompileError, match="padded with zeros by conv and with the smallest "
                                           "value by the max pool pool"):
        compile_graph(SMALL, _graph_of(build), np.zeros((4, 4, 8), np.int16), "dypipe")


def test_relu_outputs_share_a_zero_halo_between_conv_and_max_pool():
    def build(m):
        r = m.add("Relu", [m.add("Conv", ["x", m.const(np.ones((8, 8, 1, 1)))],
                                 kernel_shape=[1, 1])])
        c = m.add("Conv", [r, m.const(np.ones((4, 8, 3, 3)))], kernel_shape=[3, 3],
                  pads=[1, 1, 1, 1])
        p = m.add("MaxPool", [r], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
        return m.add("Concat", [c, m.add("Conv", [p, m.const(np.ones((4, 8, 1, 1)))],
                                         kernel_shape=[1, 1])], axis=1)
    wl = compile_graph(SMALL, _graph_of(build), np.zeros((4, 4, 8), np.int16), "dypipe")
    assert wl.meta["layers"] == 4


def test_first_layer_over_three_channels_reads_a_stacked_input():
    """An image's 3 channels would leave most lanes idle: the first convolution reads an input
    the host stacked (each pixel a window's rows), with the same result."""
    m = Model([1, 3, 20, 20])
    conv = m.add("Conv", ["x", m.const(np.random.default_rng(4).integers(-1, 2, (8, 3, 5, 5)))],
                 kernel_shape=[5, 5], strides=[2, 2], pads=[2, 2, 2, 2])
    imported = import_onnx(m.build(conv), SMALL)
    x = _exact_input([1, 3, 20, 20], seed=5)
    wl = compile_graph(SMALL, imported.graph, quantize_input(imported, x, SMALL), "dypipe")
    (layer,) = wl.meta["per_layer"]
    assert layer["kernel"] == [1, 3] and layer["in"][2] == 5 * 2 * 3
    # Compulsory: the input once, the real weights and bias, the output.
    assert layer["compulsory_bytes"] == 2 * (20 * 20 * 3 + 8 * 3 * 25 + 8 + 10 * 10 * 8)
    np.testing.assert_array_equal(_golden_output(imported, x), float_reference(imported, x))
