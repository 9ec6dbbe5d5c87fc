"""Operators on the RTL (small configuration): convolution, pooling, elementwise, concat by
layout, and LSTM and GRU cells composed from them; each bit-exact with the golden model in
every mode, with random and awkward shapes, and never faster than its roofline."""

import numpy as np
import pytest

from dypipe.config import PRESETS
from dypipe.sw import golden
from dypipe.sw.conv import ConvLayer
from dypipe.sw.eltwise import EltwiseLayer
from dypipe.sw.fc import FCLayer
from dypipe.sw.image import DramImage
from dypipe.sw.isa import Act, Op, decode
from dypipe.sw.ops import conv_workload, pool_workload, eltwise_workload
from dypipe.sw.roofline import roofline
from dypipe.sw.pool import PoolLayer
from dypipe.sw.program import ProgramBuilder
from dypipe.sw.schedule import emit
from dypipe.sw.tensor import alloc_tensor
from dypipe.sw.workload import MODES, CompileError, Workload
from dypipe.tb.runner import run_workload

SMALL = PRESETS["small"]


def _random_conv_shapes(count, seed):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        k = int(rng.choice([1, 2, 3, 5]))
        pad = int(rng.integers(0, k // 2 + 1))
        stride = int(rng.choice([1, 2]))
        h, w = (int(v) for v in rng.integers(max(1, k - 2 * pad), 10, 2))
        yield dict(h=h, w=w, cin=int(rng.integers(1, 21)), cout=int(rng.integers(1, 14)),
                   kernel=k, stride=stride, pad=pad,
                   act=Act(int(rng.integers(0, len(Act)))))


CONV_SHAPES = [
    dict(h=6, w=7, cin=8, cout=4, kernel=3, stride=1, pad=1, act=Act.RELU),   # whole rows
    dict(h=5, w=5, cin=3, cout=5, kernel=1, stride=1, pad=0, act=Act.NONE),   # 1x1, cin 3
    dict(h=9, w=8, cin=12, cout=9, kernel=3, stride=2, pad=1, act=Act.RELU),  # stride 2, phases
    dict(h=7, w=7, cin=6, cout=13, kernel=5, stride=1, pad=2, act=Act.TANH),
    dict(h=6, w=19, cin=18, cout=6, kernel=3, stride=1, pad=1, act=Act.RELU),  # one input slot
    *_random_conv_shapes(4, seed=7),
]


def _run_all_modes(make):
    results = {}
    for mode in MODES:
        wl = make(mode)
        r = run_workload(wl)
        assert r.verified, f"{mode}: {r.mismatches}"
        # No mode beats the roofline of the work it was given.
        assert r.cycles >= wl.meta.get("roofline_cycles", 0), (mode, r.cycles, wl.meta)
        results[mode] = (wl, r)
    return results


@pytest.mark.verilator
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=lambda s: "x".join(
    str(s[k]) for k in ("h", "w", "cin", "cout", "kernel", "stride", "pad")))
def test_conv(shape):
    results = _run_all_modes(lambda mode: conv_workload(SMALL, mode=mode, seed=3, **shape))
    wl, r = results["static"]
    # Every array cycle is one the plan asked for.
    plan = wl.meta["tiling"]
    assert r.counters["macs"] >= wl.meta["macs"]
    assert plan["phases"] >= 1


@pytest.mark.verilator
@pytest.mark.parametrize("shape", [
    dict(h=9, w=9, c=8, kernel=3, stride=2, pad=1, kind="max"),
    dict(h=6, w=7, c=13, kernel=2, stride=2, pad=0, kind="avg"),
    dict(h=8, w=5, c=20, kernel=3, stride=1, pad=1, kind="avg", act=Act.RELU),
    dict(h=5, w=5, c=4, kernel=5, stride=1, pad=0, kind="max"),
    dict(h=7, w=11, c=38, kernel=2, stride=3, pad=0, kind="max"),   # skips input rows
], ids=lambda s: f"{s['kind']}{s['kernel']}s{s['stride']}c{s['c']}")
def test_pool(shape):
    _run_all_modes(lambda mode: pool_workload(SMALL, mode=mode, seed=5, **shape))


@pytest.mark.verilator
@pytest.mark.parametrize("op,n,act", [("add", 1000, Act.NONE), ("mul", 77, Act.RELU),
                                      ("act", 333, Act.SIGMOID), ("act", 40, Act.TANH)])
def test_eltwise(op, n, act):
    _run_all_modes(lambda mode: eltwise_workload(SMALL, n=n, op=op, act=act, mode=mode, seed=n))


def _program(config, name, mode, layers, image, expected, compare):
    """A program running ``layers`` in order: FC layers (which emit themselves, each starting
    in the buffer half the last one left) and task lists (``steps()`` of the other layers)."""
    pb = ProgramBuilder(config)
    half = 0
    for layer in layers:
        if isinstance(layer, FCLayer):
            half = layer.emit(pb, mode, half)
        else:
            emit(pb, layer, mode)
    pb.halt()
    return Workload(name=name, mode=mode, config=config,
                    program=pb.assemble(f"<{name}>", image=image),
                    image=image, expected=expected, compare=compare)


def concat_workload(mode, seed=1):
    """Two convolutions write channels 0..11 and 12..19 of one tensor (concat by layout); a max
    pool reads all 20."""
    cfg, rng = SMALL, np.random.default_rng(seed)
    image = DramImage(cfg)
    x = rng.integers(-256, 256, (6, 6, 5), dtype=np.int16)
    tx = alloc_tensor(image, "x", 6, 6, 5, pad=1, data=x)
    cat = alloc_tensor(image, "cat", 6, 6, 20)
    w1 = rng.integers(-40, 40, (12, 5, 3, 3), dtype=np.int16)
    w2 = rng.integers(-40, 40, (8, 5, 3, 3), dtype=np.int16)
    b1, b2 = (rng.integers(-100, 100, n, dtype=np.int16) for n in (12, 8))
    c1 = ConvLayer(cfg, image, "c1", tx, w1, b1, out=cat, channel=0)
    c2 = ConvLayer(cfg, image, "c2", tx, w2, b2, out=cat, channel=12)
    y = alloc_tensor(image, "y", 3, 3, 20)
    pool = PoolLayer(cfg, "p", cat, kernel=2, stride=2, out=y)
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    both = np.concatenate([c1.golden(xp), c2.golden(xp)], axis=2)
    expected = pool.golden(both, 0)
    return _program(cfg, "concat", mode, [c1.steps(), c2.steps(), pool.steps()], image,
                    {"y": y.pack(expected)}, {"y": y.mask()})


@pytest.mark.verilator
def test_concat_by_layout():
    _run_all_modes(concat_workload)


def lstm_workload(mode, seed=2, hidden=12, inputs=9):
    """One LSTM step from FC layers with sigmoid / tanh and elementwise multiply and add::

        i, f, o = sigmoid(W_{i,f,o} [x, h] + b);  g = tanh(W_g [x, h] + b)
        c' = f * c + i * g;   h' = o * tanh(c')
    """
    cfg, rng = SMALL, np.random.default_rng(seed)
    one = 1 << cfg.frac_bits
    image = DramImage(cfg)
    xh = rng.integers(-one, one, inputs + hidden, dtype=np.int16)
    c = rng.integers(-one, one, hidden, dtype=np.int16)
    rc = image.alloc("c", hidden, c)
    gates, layers = {}, []
    for name, act in (("i", Act.SIGMOID), ("f", Act.SIGMOID), ("o", Act.SIGMOID),
                      ("g", Act.TANH)):
        w = rng.integers(-60, 60, (hidden, inputs + hidden), dtype=np.int16)
        b = rng.integers(-one // 2, one // 2, hidden, dtype=np.int16)
        layer = FCLayer(cfg, image, name, xh if not layers else layers[0].rx, w, b, act)
        gates[name] = golden.fc(xh, w, b, cfg.frac_bits, act)
        layers.append(layer)
    regions = {n: image.alloc(n, hidden) for n in ("fc", "ig", "c2", "tc", "h2")}
    g = {n: layer.ry for n, layer in zip("ifog", layers)}
    ew = [EltwiseLayer(cfg, "fc", "mul", g["f"], rc, regions["fc"], hidden),
          EltwiseLayer(cfg, "ig", "mul", g["i"], g["g"], regions["ig"], hidden),
          EltwiseLayer(cfg, "c2", "add", regions["fc"], regions["ig"], regions["c2"], hidden),
          EltwiseLayer(cfg, "tc", "act", regions["c2"], None, regions["tc"], hidden, Act.TANH),
          EltwiseLayer(cfg, "h2", "mul", g["o"], regions["tc"], regions["h2"], hidden)]
    f = cfg.frac_bits
    fc_ = golden.eltwise(gates["f"], c, "mul", f)
    c2 = golden.eltwise(fc_, golden.eltwise(gates["i"], gates["g"], "mul", f), "add", f)
    h2 = golden.eltwise(gates["o"], golden.eltwise(c2, 0 * c2, "add", f, Act.TANH), "mul", f)
    return _program(cfg, "lstm", mode, layers + [e.steps() for e in ew], image,
                    {"c2": c2, "h2": h2}, {})


@pytest.mark.verilator
def test_lstm_cell_from_operators():
    _run_all_modes(lstm_workload)


def gru_workload(mode, seed=4, hidden=10, inputs=7):
    """One GRU step from FC layers with sigmoid / tanh and elementwise multiply and add::

        r, z = sigmoid(W_{r,z} [x, h] + b);  n = tanh(W_n x + b_n + r * (U_n h + c_n))
        h' = n + z * (h - n)      (h - n = h + n * -1.0)
    """
    cfg, rng = SMALL, np.random.default_rng(seed)
    one, f = 1 << cfg.frac_bits, cfg.frac_bits
    image = DramImage(cfg)
    x = rng.integers(-one, one, inputs, dtype=np.int16)
    h = rng.integers(-one, one, hidden, dtype=np.int16)
    xh = np.concatenate([x, h])

    def weights(n_in):
        return (rng.integers(-60, 60, (hidden, n_in), dtype=np.int16),
                rng.integers(-one // 2, one // 2, hidden, dtype=np.int16))

    specs = [("r", xh, Act.SIGMOID), ("z", xh, Act.SIGMOID), ("hn", h, Act.NONE),
             ("xn", x, Act.NONE)]
    layers, gates = [], {}
    for name, inp, act in specs:
        w, b = weights(inp.size)
        shared = next((l.rx for l in layers if l.n_in == inp.size and inp is xh), None)
        layers.append(FCLayer(cfg, image, name, shared if shared is not None else inp, w, b,
                              act))
        gates[name] = golden.fc(inp, w, b, f, act)
    rh = image.alloc("h_in", hidden, h)
    minus_one = image.alloc("minus_one", hidden, np.full(hidden, -one, np.int16))
    out = {n: image.alloc(n, hidden) for n in ("rhn", "n", "neg_n", "d", "zd", "h2")}
    g = {l.name: l.ry for l in layers}
    ew = [EltwiseLayer(cfg, "rhn", "mul", g["r"], g["hn"], out["rhn"], hidden),
          EltwiseLayer(cfg, "n", "add", g["xn"], out["rhn"], out["n"], hidden, Act.TANH),
          EltwiseLayer(cfg, "neg_n", "mul", out["n"], minus_one, out["neg_n"], hidden),
          EltwiseLayer(cfg, "d", "add", rh, out["neg_n"], out["d"], hidden),
          EltwiseLayer(cfg, "zd", "mul", g["z"], out["d"], out["zd"], hidden),
          EltwiseLayer(cfg, "h2", "add", out["n"], out["zd"], out["h2"], hidden)]
    n = golden.eltwise(gates["xn"], golden.eltwise(gates["r"], gates["hn"], "mul", f), "add", f,
                       Act.TANH)
    d = golden.eltwise(h, golden.eltwise(n, np.full(hidden, -one), "mul", f), "add", f)
    h2 = golden.eltwise(n, golden.eltwise(gates["z"], d, "mul", f), "add", f)
    return _program(cfg, "gru", mode, layers + [e.steps() for e in ew], image, {"h2": h2}, {})


@pytest.mark.verilator
def test_gru_cell_from_operators():
    _run_all_modes(gru_workload)


def test_dypipe_programs_loop():
    """DyPipe's control program is a loop, much shorter than the unrolled static one, for the
    same tasks."""
    shape = dict(h=20, w=20, c=8, kernel=3, stride=1, pad=1)
    static = pool_workload(SMALL, mode="static", **shape)
    dyn = pool_workload(SMALL, mode="dypipe", **shape)
    assert len(dyn.program.words) * 3 < len(static.program.words)
    branches = [[decode(w)["op"] == Op.BNE for w in wl.program.words] for wl in (static, dyn)]
    assert not any(branches[0]) and any(branches[1])


def test_layer_too_big_says_what_it_needs():
    with pytest.raises(CompileError, match=r"NBin needs \d+ rows, has 256"):
        conv_workload(SMALL, h=4, w=600, cin=64, cout=4, kernel=3)


def test_conv_that_fits_only_single_buffered():
    wl = conv_workload(SMALL, h=6, w=19, cin=18, cout=6, kernel=3, stride=1, pad=1)
    assert wl.meta["tiling"]["tiles"] > 1


def test_roofline_counts_only_the_inputs_a_window_reads():
    """A 2x2 pool with stride 3 never reads every third row and column."""
    wl = pool_workload(SMALL, h=7, w=11, c=4, kernel=2, stride=3)
    read = 4 * 8 * 4                # rows 0,1,3,4 x columns 0,1,3,4,6,7,9,10 x 4 channels
    assert wl.meta["compulsory_bytes"] == 2 * (read + 2 * 4 * 4)      # + the 2x4x4 output


def test_roofline_is_the_larger_bound():
    assert roofline(SMALL, macs=32 * 100, compulsory_bytes=8 * 10) == 100
    assert roofline(SMALL, macs=32, compulsory_bytes=8 * 10 + 1) == 11


@pytest.mark.verilator
def test_bench_ops_writes_csv_json_png(tmp_path, capsys):
    """`dypipe bench ops` on two scaled-down operators: progress on stderr, a summary, and the
    three files with one record per operator and mode."""
    import csv
    import json
    from dypipe.cli import main
    out = tmp_path / "bench"
    assert main(["bench", "ops", "--config", "small", "--ops", "pool2,conv3",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "[1/6] Conv3 nonepipe" in captured.err and "geomean DyPipe / static" in captured.out
    records = json.loads((out / "ops.json").read_text())["records"]
    assert [(r["op"], r["mode"]) for r in records] == [
        (op, mode) for op in ("Conv3", "Pool2") for mode in MODES]
    for r in records:
        assert r["verified"] and r["cycles"] >= r["roofline_cycles"] > 0
        assert r["dram_bytes"] == r["counters"]["dram_read_bytes"] + r["counters"][
            "dram_write_bytes"]
        assert r["normalized_to_nonepipe"] <= 1.0 or r["mode"] == "nonepipe"
    rows = list(csv.DictReader((out / "ops.csv").open()))
    assert len(rows) == 6 and rows[0]["op"] == "Conv3"
    assert (out / "ops.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_ops_rejects_unknown_operator():
    from dypipe.cli import main
    assert main(["bench", "ops", "--config", "small", "--ops", "conv9"]) == 2


def test_schedule_models_linear_and_ring_values():
    from dypipe.sw.schedule import _model
    assert _model([5, 9, 13, 17]) == (5, 4, None)            # an address that advances
    assert _model([0, 40, 80, 0, 40, 80, 0]) == (0, 40, 3)   # a slot of a 3-slot ring
    assert _model([7, 7, 7]) == (7, 0, None)
    assert _model([0, 40, 0, 41]) is None                    # neither: no loop
