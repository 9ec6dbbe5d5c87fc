"""The model zoo: the paper's four CNNs as ONNX graphs, checked against the design brief's
sizes, Table 2's layers, and the fixed-point range on onnx's reference evaluator."""

import numpy as np
import onnx
import pytest
from onnx import helper

from dypipe.sw.model_zoo import (NETWORKS, activations, alexnet, build, count_macs, squeezenet,
                                 weight_count)

# The design brief's counts (G MACs, MiB of 16-bit weights, BN folded). GoogLeNet's weights are
# 6,998,552 parameters = 13.35 MiB; the brief's "13.4" matches the parameter count in millions
# *with* the two auxiliary classifiers (13.38 M), which the paper's inference graph leaves out.
SIZES = {"alexnet": (1.135, 119), "resnet18": (1.814, 22.3), "googlenet": (1.583, 13.3),
         "squeezenet": (0.819, 2.4)}
STRUCTURE = ("kernel_shape", "strides", "pads", "ceil_mode", "group", "axis", "transB")


@pytest.fixture(scope="module")
def paper():
    return {name: build(name) for name in NETWORKS}


@pytest.fixture(scope="module")
def small():
    return {name: build(name, "small") for name in NETWORKS}


def shapes(model):
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (*model.graph.input, *model.graph.value_info, *model.graph.output)}


def node(model, name):
    (found,) = [n for n in model.graph.node if n.name == name]
    return found, {a.name: helper.get_attribute_value(a) for a in found.attribute}


def weight_shape(model, name):
    (init,) = [t for t in model.graph.initializer if t.name == name]
    return list(init.dims)


def layers(model):
    """Op types and the attributes that fix a layer's shape; an AveragePool over the whole
    feature map (GoogLeNet's pool5) shows as such, whatever the map's side."""
    sizes, out = shapes(model), []
    for n in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute if a.name in STRUCTURE}
        if n.op_type == "AveragePool" and attrs["kernel_shape"] == sizes[n.input[0]][2:]:
            attrs["kernel_shape"] = "whole map"
        out.append((n.op_type, attrs))
    return out


@pytest.mark.parametrize("variant", ["paper", "small"])
def test_models_pass_the_checker(variant, paper, small):
    for model in (paper if variant == "paper" else small).values():
        onnx.checker.check_model(model, full_check=True)


@pytest.mark.parametrize("variant", ["paper", "small"])
def test_graph_conventions(variant, paper, small):
    classes = 1000 if variant == "paper" else 125
    for name, model in (paper if variant == "paper" else small).items():
        sizes = shapes(model)
        side = sizes["input"][2]
        assert [v.name for v in model.graph.input] == ["input"], name
        assert sizes["input"] == [1, 3, side, side], f"{name}: input {sizes['input']}"
        assert [v.name for v in model.graph.output] == ["output"], name
        assert sizes["output"] == [1, classes], f"{name}: output {sizes['output']}"
        assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)], name
        names = [n.name for n in model.graph.node]
        assert len(set(names)) == len(names), f"{name}: node names repeat"
        untyped = [o for n in model.graph.node for o in n.output
                   if not sizes.get(o) or 0 in sizes[o]]
        assert not untyped, f"{name}: no inferred shape for {untyped}"


@pytest.mark.parametrize("name", NETWORKS)
def test_paper_sizes_match_the_brief(name, paper):
    macs, mib = count_macs(paper[name]) / 1e9, weight_count(paper[name]) * 2 / 2**20
    exp_macs, exp_mib = SIZES[name]
    assert round(macs, 3) == exp_macs, f"{name}: {macs:.4f} G MACs, expected {exp_macs}"
    digits = 0 if exp_mib >= 100 else 1
    assert round(mib, digits) == exp_mib, f"{name}: {mib:.3f} MiB, expected {exp_mib}"


def test_batchnorm_counts_as_the_bias_it_folds_into():
    model = build("resnet18", "small")
    got = weight_count(model) - weight_count(_without_stem_bn(model))
    assert got == 8, f"the stem BN (8 channels) counts {got} parameters, expected 8"


def _without_stem_bn(model):
    """A copy whose stem BN is replaced by an identity (so it counts nothing)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    (bn,) = [n for n in copy.graph.node if n.name == "bn1"]
    bn.CopyFrom(helper.make_node("Identity", [bn.input[0]], list(bn.output), name="bn1"))
    return copy


@pytest.mark.parametrize("name", NETWORKS)
def test_small_has_the_paper_structure(name, paper, small):
    got, exp = layers(small[name]), layers(paper[name])
    assert len(got) == len(exp), f"{name}: {len(got)} nodes, expected {len(exp)}"
    for i, (g, e) in enumerate(zip(got, exp)):
        assert g == e, f"{name}: node {i} ({small[name].graph.node[i].name}) is {g}, expected {e}"


@pytest.mark.parametrize("name", NETWORKS)
def test_small_evaluates_in_fixed_point_range(name, small):
    model = small[name]
    side = shapes(model)["input"][2]
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, side, side)).astype(np.float32)
    acts, sizes = activations(model, x), shapes(model)
    ops = {n.output[0]: n.op_type for n in model.graph.node}
    assert acts["output"].shape == (1, 125)
    for tensor, value in acts.items():
        assert list(value.shape) == sizes[tensor], f"{name}: {tensor} is {value.shape}, " \
                                                   f"shape inference says {sizes[tensor]}"
        assert np.isfinite(value).all(), f"{name}: {tensor} is not finite"
        peak = np.abs(value).max()
        assert peak < 64, f"{name}: |{tensor}| reaches {peak:.2f}, expected below 64"
        if ops[tensor] == "Relu":
            mean = np.abs(value).mean()
            assert mean > 0.05, f"{name}: {tensor} averages {mean:.4f}, expected above 0.05"


def test_table2_layers(paper):
    net = paper["alexnet"]
    sizes = shapes(net)
    conv2, attrs = node(net, "conv2")
    assert sizes[conv2.input[0]] == [1, 96, 27, 27] and sizes["conv2"] == [1, 256, 27, 27]
    assert weight_shape(net, "conv2.weight") == [256, 96, 5, 5] and attrs["pads"] == [2] * 4
    assert weight_shape(net, "fc7.weight") == [4096, 4096]

    net = paper["googlenet"]
    sizes = shapes(net)
    conv2, attrs = node(net, "conv2/3x3")
    assert sizes[conv2.input[0]] == [1, 64, 56, 56] and sizes["conv2/3x3"] == [1, 192, 56, 56]
    assert weight_shape(net, "conv2/3x3.weight") == [192, 64, 3, 3]
    pool, attrs = node(net, "inception_4e/pool")
    assert pool.op_type == "MaxPool" and sizes[pool.input[0]] == [1, 528, 14, 14]
    assert (attrs["kernel_shape"], attrs["strides"]) == ([3, 3], [1, 1])
    assert sizes["inception_4e/pool"] == [1, 528, 14, 14]
    assert weight_shape(net, "loss3/classifier.weight") == [1000, 1024]

    net = paper["squeezenet"]
    pool, attrs = node(net, "pool8")
    pools = [n.name for n in net.graph.node if n.op_type == "MaxPool"]
    assert pools.index("pool8") == 2 and shapes(net)[pool.input[0]] == [1, 512, 27, 27]
    assert (attrs["kernel_shape"], attrs["strides"]) == ([3, 3], [2, 2])

    net = paper["resnet18"]
    pool, attrs = node(net, "maxpool")
    assert shapes(net)[pool.input[0]] == [1, 64, 112, 112] and shapes(net)["maxpool"][2] == 56
    assert weight_shape(net, "fc.weight") == [1000, 512]


def test_same_seed_same_bytes_other_seed_other_weights():
    a, b, c = (build("googlenet", "small", seed=s) for s in (3, 3, 4))
    assert a.SerializeToString() == b.SerializeToString()
    for wa, wc in zip(a.graph.initializer, c.graph.initializer):
        assert wa.name == wc.name and wa.raw_data != wc.raw_data, f"{wa.name} did not change"


def test_width_and_classes():
    model = squeezenet(width=lambda c: c // 2, num_classes=10, input_size=64)
    assert weight_shape(model, "fire2/expand3x3.weight") == [32, 8, 3, 3]
    assert weight_shape(model, "conv10.weight") == [10, 256, 1, 1]
    assert shapes(model)["output"] == [1, 10]


@pytest.mark.parametrize("call, message", [
    (lambda: build("vgg16"), "network must be one of"),
    (lambda: build("alexnet", "tiny"), "variant must be"),
    (lambda: alexnet(width=0), "width must be"),
    (lambda: alexnet(input_size=40), "pool5: a 40x40 input is too small"),
])
def test_bad_arguments_say_what_was_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()
