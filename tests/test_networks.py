"""Whole networks on the RTL (small configuration): the paper's four CNNs, scaled down, and a
user's ONNX file through the command line; every layer's output bit-exact in every mode."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dypipe.cli import main
from dypipe.config import PRESETS
from dypipe.nets import NetworkJob
from dypipe.sw.model_zoo import NETWORKS
from dypipe.sw.workload import MODES
from dypipe.tb.runner import run_workload

pytestmark = pytest.mark.verilator
SMALL = PRESETS["small"]


@pytest.mark.parametrize("name", NETWORKS)
def test_network_all_modes(name):
    job = NetworkJob(SMALL, name)
    results = {}
    for mode in MODES:
        wl = job.workload(mode)
        r = run_workload(wl)
        assert r.verified, f"{name} {mode}: {r.mismatches}"
        # Every tensor a layer writes is checked, not only the network's output.
        assert len(wl.expected) >= wl.meta["layers"] // 2
        assert r.cycles >= wl.meta["whole_roofline_cycles"]
        error = job.compare(wl, r)
        assert error["relative_rms_error"] < 0.3, error       # quantization stays sane
        results[mode] = r
    assert results["dypipe"].cycles < results["nonepipe"].cycles
    assert results["static"].cycles < results["nonepipe"].cycles


def _user_model(path):
    """A small CNN a user might bring: conv + BN + ReLU, max pool, a residual add, global
    average pool, flatten, Gemm, written to ``path``."""
    rng = np.random.default_rng(7)

    def const(name, shape, scale):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32),
                                       name)

    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g", "beta", "mean", "var"], ["n1"],
                         name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "p1"], ["a2"], name="add2"),
        helper.make_node("Relu", ["a2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["output"], name="fc", transB=1),
    ]
    ones = np.ones(8, np.float32)
    inits = [const("w1", (8, 3, 3, 3), 0.3), const("b1", (8,), 0.1),
             numpy_helper.from_array(ones + rng.uniform(-0.1, 0.1, 8).astype(np.float32), "g"),
             const("beta", (8,), 0.1), const("mean", (8,), 0.1),
             numpy_helper.from_array(ones, "var"),
             const("w2", (8, 8, 3, 3), 0.15), const("w3", (10, 8), 0.3), const("b3", (10,), 0.1)]
    graph = helper.make_graph(nodes, "user_cnn",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                             [1, 3, 12, 12])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                                             [1, 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_run_a_users_onnx_file(tmp_path, capsys):
    model, out = tmp_path / "user_cnn.onnx", tmp_path / "run.json"
    _user_model(model)
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(3).uniform(-1, 1, (1, 3, 12, 12)).astype(np.float32))
    assert main(["run", str(model), "--mode", "all", "--input", str(x), "--json",
                 str(out)]) == 0
    text = capsys.readouterr().out
    assert "dequantized output vs the float model" in text and "MISMATCH" not in text
    record = json.loads(out.read_text())
    assert set(record["modes"]) == set(MODES)
    for mode, run in record["modes"].items():
        assert run["verified"], (mode, run["mismatches"])
        assert run["float_error"]["relative_rms_error"] < 0.1, run["float_error"]
        assert run["layers"] == 6        # conv+bn+relu, pool, conv, add+relu, gap, fc
    assert [l["layer"] for l in record["per_layer"]] == ["conv", "pool", "conv", "eltwise",
                                                         "pool", "fc"]


def test_run_rejects_what_it_cannot_run(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    node = helper.make_node("Softmax", ["input"], ["output"], name="prob")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, [1, 10])], [helper.make_tensor_value_info(
            "output", TensorProto.FLOAT, [1, 10])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(bad))
    assert main(["run", str(bad)]) == 2
    assert "prob (Softmax): operator Softmax is not supported" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.onnx")]) == 2
    assert "no such ONNX file" in capsys.readouterr().err
    assert main(["run", "fc", "--input", "x.npy"]) == 2
    assert "--input is for networks" in capsys.readouterr().err
