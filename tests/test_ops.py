"""Operators on the RTL (small configuration): convolution, pooling, elementwise, concat by
layout, and LSTM and GRU cells composed from them; each bit-exact with the golden model in
every mode, with random and awkward shapes, and never faster than its roofline."""

import numpy as np
import pytest

from dypipe.config import PRESETS
from dypipe.sw.conv import ConvLayer
from dypipe.sw.eltwise import EltwiseLayer
from dypipe.sw.fc import FCLayer, alloc_vector
from dypipe.sw.image import DramImage
from dypipe.sw.isa import Act, Op, decode
from dypipe.sw.network import compose
from dypipe.sw.ops import conv_workload, pool_workload, eltwise_workload
from dypipe.sw.roofline import roofline
from dypipe.sw.pool import PoolLayer
from dypipe.sw.tensor import alloc_tensor
from dypipe.sw.workload import MODES, CompileError
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


WIDE = dict(h=3, w=150, cin=16, cout=4, kernel=3, stride=1, pad=1, act=Act.RELU)
BIG_WEIGHTS = dict(h=4, w=4, cin=160, cout=8, kernel=3, stride=1, pad=1, act=Act.NONE)
STACKED = dict(h=8, w=10, cin=4, cout=8, kernel=3, stride=1, pad=1, act=Act.RELU)

CONV_SHAPES = [
    WIDE,                                                                        # column tiles
    BIG_WEIGHTS,                                               # overlapping weight slots
    STACKED,                                         # each pixel holds its window's 3 rows
    dict(h=6, w=7, cin=8, cout=4, kernel=3, stride=1, pad=1, act=Act.RELU),   # whole rows
    dict(h=5, w=5, cin=3, cout=5, kernel=1, stride=1, pad=0, act=Act.NONE),   # 1x1, cin 3
    dict(h=9, w=8, cin=12, cout=9, kernel=3, stride=2, pad=1, act=Act.RELU),  # unaligned chunks
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
    assert plan["chunks"] >= 1


@pytest.mark.verilator
@pytest.mark.parametrize("shape", [
    dict(h=9, w=9, c=8, kernel=3, stride=2, pad=1, kind="max"),
    dict(h=6, w=7, c=13, kernel=2, stride=2, pad=0, kind="avg"),
    dict(h=8, w=5, c=20, kernel=3, stride=1, pad=1, kind="avg", act=Act.RELU),
    dict(h=5, w=5, c=4, kernel=5, stride=1, pad=0, kind="max"),
    dict(h=7, w=11, c=38, kernel=2, stride=3, pad=0, kind="max"),   # skips input rows
    dict(h=9, w=8, c=12, kernel=3, stride=1, pad=1, kind="max", act=Act.RELU, separable=True),
    dict(h=10, w=9, c=8, kernel=3, stride=2, pad=1, kind="max", separable=True),
], ids=lambda s: f"{s['kind']}{s['kernel']}s{s['stride']}c{s['c']}"
                 f"{'-separable' if s.get('separable') else ''}")
def test_pool(shape):
    _run_all_modes(lambda mode: pool_workload(SMALL, mode=mode, seed=5, **shape))


@pytest.mark.verilator
@pytest.mark.parametrize("op,n,act", [("add", 1000, Act.NONE), ("mul", 77, Act.RELU),
                                      ("act", 333, Act.SIGMOID), ("act", 40, Act.TANH)])
def test_eltwise(op, n, act):
    _run_all_modes(lambda mode: eltwise_workload(SMALL, n=n, op=op, act=act, mode=mode, seed=n))


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
    return compose(cfg, "concat", mode, image, [c1, c2, pool])


@pytest.mark.verilator
def test_concat_by_layout():
    _run_all_modes(concat_workload)


def halo_workload(mode, seed=6):
    """Layers writing into the interior of tensors with a halo and reading them through views
    with less padding: a conv writes a halo'd tensor that a padded max pool and an unpadded
    1x1 conv both read; the pool writes into a halo'd tensor; an add reads it with the 1x1
    conv's output and writes a third halo'd tensor."""
    cfg, rng = SMALL, np.random.default_rng(seed)
    image = DramImage(cfg)
    x = rng.integers(-256, 256, (7, 6, 5), dtype=np.int16)
    tx = alloc_tensor(image, "x", 7, 6, 5, pad=1, data=x)
    mid = alloc_tensor(image, "mid", 7, 6, 12, pad=1)          # ReLU output: zero halo is max-safe
    pooled = alloc_tensor(image, "pooled", 7, 6, 12, pad=2)
    proj = alloc_tensor(image, "proj", 7, 6, 12)
    summed = alloc_tensor(image, "sum", 7, 6, 12, pad=1)
    w1 = rng.integers(-40, 40, (12, 5, 3, 3), dtype=np.int16)
    w2 = rng.integers(-60, 60, (12, 12, 1, 1), dtype=np.int16)
    b = rng.integers(-100, 100, 12, dtype=np.int16)
    layers = [
        ConvLayer(cfg, image, "c1", tx, w1, b, out=mid),
        PoolLayer(cfg, "p", mid.view((1, 1, 1, 1)), kernel=3, stride=1, out=pooled.view()),
        ConvLayer(cfg, image, "c2", mid.view(), w2, b, act=Act.NONE, out=proj),
        EltwiseLayer(cfg, "add", "add", pooled.view(), proj, summed.view(), Act.RELU),
    ]
    return compose(cfg, "halo", mode, image, layers)


@pytest.mark.verilator
def test_views_and_halos():
    _run_all_modes(halo_workload)


def _vectors(image, rng, one, **sizes):
    """Random vectors (1 x 1 x n tensors) ``name=n``."""
    return {name: alloc_vector(image, name, n, rng.integers(-one, one, n, dtype=np.int16))
            for name, n in sizes.items()}


def lstm_workload(mode, seed=2, hidden=12, inputs=9):
    """One LSTM step from FC layers with sigmoid / tanh and elementwise multiply and add::

        i, f, o = sigmoid(W_{i,f,o} [x, h] + b);  g = tanh(W_g [x, h] + b)
        c' = f * c + i * g;   h' = o * tanh(c')
    """
    cfg, rng = SMALL, np.random.default_rng(seed)
    one = 1 << cfg.frac_bits
    image = DramImage(cfg)
    v = _vectors(image, rng, one, xh=inputs + hidden, c=hidden)
    t = {n: alloc_vector(image, n, hidden) for n in ("i", "f", "o", "g", "fc", "ig", "c2", "tc",
                                                     "h2")}
    layers, half = [], 0
    for name, act in (("i", Act.SIGMOID), ("f", Act.SIGMOID), ("o", Act.SIGMOID),
                      ("g", Act.TANH)):
        w = rng.integers(-60, 60, (hidden, inputs + hidden), dtype=np.int16)
        b = rng.integers(-one // 2, one // 2, hidden, dtype=np.int16)
        layers.append(FCLayer(cfg, image, name, v["xh"], w, b, act, out=t[name],
                              first_half=half))
        half = layers[-1].next_half
    layers += [EltwiseLayer(cfg, "fc", "mul", t["f"], v["c"], t["fc"]),
               EltwiseLayer(cfg, "ig", "mul", t["i"], t["g"], t["ig"]),
               EltwiseLayer(cfg, "c2", "add", t["fc"], t["ig"], t["c2"]),
               EltwiseLayer(cfg, "tc", "act", t["c2"], None, t["tc"], Act.TANH),
               EltwiseLayer(cfg, "h2", "mul", t["o"], t["tc"], t["h2"])]
    return compose(cfg, "lstm", mode, image, layers)


@pytest.mark.verilator
def test_lstm_cell_from_operators():
    _run_all_modes(lstm_workload)


def gru_workload(mode, seed=4, hidden=10, inputs=7):
    """One GRU step from FC layers with sigmoid / tanh and elementwise multiply and add::

        r, z = sigmoid(W_{r,z} [x, h] + b);  n = tanh(W_n x + b_n + r * (U_n h + c_n))
        h' = n + z * (h - n)      (h - n = h + n * -1.0)
    """
    cfg, rng = SMALL, np.random.default_rng(seed)
    one = 1 << cfg.frac_bits
    image = DramImage(cfg)
    v = _vectors(image, rng, one, x=inputs, h=hidden, xh=inputs + hidden)
    minus_one = alloc_vector(image, "minus_one", hidden, np.full(hidden, -one, np.int16))
    t = {n: alloc_vector(image, n, hidden)
         for n in ("r", "z", "hn", "xn", "rhn", "n", "neg_n", "d", "zd", "h2")}
    layers, half = [], 0
    for name, src, act in (("r", "xh", Act.SIGMOID), ("z", "xh", Act.SIGMOID),
                           ("hn", "h", Act.NONE), ("xn", "x", Act.NONE)):
        w = rng.integers(-60, 60, (hidden, v[src].c), dtype=np.int16)
        b = rng.integers(-one // 2, one // 2, hidden, dtype=np.int16)
        layers.append(FCLayer(cfg, image, name, v[src], w, b, act, out=t[name],
                              first_half=half))
        half = layers[-1].next_half
    layers += [EltwiseLayer(cfg, "rhn", "mul", t["r"], t["hn"], t["rhn"]),
               EltwiseLayer(cfg, "n", "add", t["xn"], t["rhn"], t["n"], Act.TANH),
               EltwiseLayer(cfg, "neg_n", "mul", t["n"], minus_one, t["neg_n"]),
               EltwiseLayer(cfg, "d", "add", v["h"], t["neg_n"], t["d"]),
               EltwiseLayer(cfg, "zd", "mul", t["z"], t["d"], t["zd"]),
               EltwiseLayer(cfg, "h2", "add", t["n"], t["zd"], t["h2"])]
    return compose(cfg, "gru", mode, image, layers)


@pytest.mark.verilator
def test_gru_cell_from_operators():
    _run_all_modes(gru_workload)


def test_dypipe_programs_loop():
    """DyPipe's control program is a loop, shorter than the unrolled static one, for the same
    tasks; both issue the tasks as SPAWNs of templates (static loads the operands of each).
    At most the layer's first task goes out word by word (SAVECTX ... SAVEPC)."""
    shape = dict(h=40, w=40, c=8, kernel=3, stride=1, pad=1)
    static = pool_workload(SMALL, mode="static", **shape)
    dyn = pool_workload(SMALL, mode="dypipe", **shape)
    assert len(dyn.program.words) < len(static.program.words)
    ops = [[decode(w)["op"] for w in wl.program.words] for wl in (static, dyn)]
    assert Op.BNE not in ops[0] and Op.BNE in ops[1]
    assert Op.SPAWN in ops[0] and Op.SPAWN in ops[1]
    assert ops[0].count(Op.SAVEPC) <= 1 and ops[1].count(Op.SAVEPC) <= 1


def test_layer_too_big_says_what_it_needs():
    # One output pixel's 3x3 window over 1000 channels is 9000 values: 1125 rows of weights
    # for one block of outputs, 1125 rows of input; small's SB and NBin have 256 rows each.
    with pytest.raises(CompileError, match=r"even at one output pixel .* SB needs 1125 rows, "
                                           r"has 256"):
        conv_workload(SMALL, h=4, w=6, cin=1000, cout=4, kernel=3)


def test_wide_rows_are_cut_into_column_tiles():
    """One output row of a 150-pixel-wide 3x3 convolution over 16 channels needs more input
    than small's NBin holds: the tiler cuts rows into column tiles (test_conv runs it)."""
    wl = conv_workload(SMALL, **WIDE)
    assert wl.meta["tiling"]["columns_per_tile"] < 150


def test_few_input_channels_read_stacked_rows():
    """Four input channels would leave most of small's 8 lanes idle: the tiler stacks each
    output row's 3 input rows as the channels of one pixel (test_conv runs it)."""
    wl = conv_workload(SMALL, **STACKED)
    assert wl.meta["tiling"]["mapping"] == "stacked"
    assert wl.meta["kernel"] == [3, 3] and wl.meta["macs"] == 8 * 10 * 8 * 4 * 9


def test_weight_sets_too_big_for_two_slots_overlap():
    """A block's weights take 180 of small's 256 SB rows: two slots overlap (test_conv runs
    it), and each set's load is split so that only the shared rows wait."""
    wl = conv_workload(SMALL, **BIG_WEIGHTS)
    assert wl.meta["tiling"]["weight_slots"] == "overlapping"


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
    """`dypipe bench ops` on two scaled-down operators, two runs at a time: progress on stderr,
    a summary, and the three files with one record per operator and mode, in order."""
    import csv
    import json
    from dypipe.cli import main
    out = tmp_path / "bench"
    assert main(["bench", "ops", "--config", "small", "--ops", "pool2,conv3", "--jobs", "2",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "6 runs, 2 at a time" in captured.err and "[6/6] " in captured.err
    assert "geomean DyPipe / static" in captured.out
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
