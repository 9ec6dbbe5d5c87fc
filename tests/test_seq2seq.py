"""Recurrent cells and seq2seq (one encoder, one decoder layer) on the RTL: bit-exact in every
mode, weights resident and streamed, against the golden step; the golden step against float
arithmetic; bad input."""

import numpy as np
import pytest

from dypipe.config import PRESETS
from dypipe.sw.cells import CELLS, cell_step, padded, random_cell_weights
from dypipe.sw.seq2seq import random_seq2seq
from dypipe.sw.workload import MODES
from dypipe.tb.runner import run_workload

SMALL = PRESETS["small"]


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _float_step(cell, weights, x, h, c, frac):
    """The cell in floating point (exact sigmoid / tanh)."""
    one = float(1 << frac)
    f = {n: (w / one, b / one) for n, (w, b) in weights.items()}
    x, h = x / one, h / one
    part = {"xh": np.concatenate([x, h]), "x": x, "h": h}
    g = {}
    for gate in cell.gates:
        w, b = f[gate.name]
        a = w @ part[gate.part] + b
        g[gate.name] = {"SIGMOID": _sigmoid(a), "TANH": np.tanh(a), "NONE": a}[gate.act.name]
    if cell.name == "rnn":
        return g["out"], None
    if cell.name == "lstm":
        c2 = g["f"] * (c / one) + g["i"] * g["g"]
        return g["o"] * np.tanh(c2), c2
    n = np.tanh(g["xn"] + g["r"] * g["hn"])
    return n + g["z"] * (h - n), None


@pytest.mark.parametrize("name", sorted(CELLS))
def test_golden_step_is_close_to_float(name):
    cell, rng = CELLS[name], np.random.default_rng(3)
    hidden = inputs = 16
    w = random_cell_weights(cell, SMALL, hidden, inputs, rng)
    one = 1 << SMALL.frac_bits
    hp = padded(hidden, SMALL)
    x = rng.integers(-one, one, padded(inputs, SMALL)).astype(np.int16)
    h = rng.integers(-one // 2, one // 2, hp).astype(np.int16)
    c = rng.integers(-one, one, hp).astype(np.int16)
    h2, c2, _ = cell_step(cell, SMALL, w, x, h, c if cell.has_c else None)
    fh, fc = _float_step(cell, w, x, h, c, SMALL.frac_bits)
    # Q.8 rounding and the piecewise-linear sigmoid / tanh: a few hundredths at most.
    assert np.max(np.abs(h2 / one - fh)) < 0.06
    if cell.has_c:
        assert np.max(np.abs(c2 / one - fc)) < 0.06


@pytest.mark.verilator
@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("stream", [False, True])
def test_seq2seq_all_modes(cell, stream):
    cycles = {}
    for mode in MODES:
        wl = random_seq2seq(SMALL, cell, sentences=5, hidden=8, max_length=6, seed=2,
                            stream=stream, mode=mode)
        r = run_workload(wl)
        assert r.verified, f"{mode}: {r.mismatches}"
        assert wl.meta["weights_stream"] == stream
        cycles[mode] = r.cycles
        steps = sum(a + b for a, b in wl.meta["lengths"])
        assert wl.meta["steps"] == (5 * 12 if mode == "static" else steps)
    # DyPipe runs only the real steps, NonePipe runs them one task at a time.
    assert cycles["dypipe"] < cycles["static"] and cycles["dypipe"] < cycles["nonepipe"]


@pytest.mark.verilator
def test_seq2seq_three_rows_per_vector():
    # hidden 24 on small: three NBin rows a vector (the vector operations' offsets pass 32).
    wl = random_seq2seq(SMALL, "gru", sentences=2, hidden=24, max_length=3, seed=5)
    r = run_workload(wl)
    assert r.verified, r.mismatches


def test_seq2seq_bad_input():
    with pytest.raises(ValueError, match="cell must be one of"):
        random_seq2seq(SMALL, "transformer")
    from dypipe.sw.seq2seq import compile_seq2seq
    with pytest.raises(ValueError, match="lengths must be in 1..4"):
        compile_seq2seq(SMALL, "rnn", np.zeros((1, 4, 8), np.int16), np.zeros((1, 4, 8), np.int16),
                        [(0, 2)], None, hidden=8, inputs=8, max_length=4)


@pytest.mark.verilator
def test_bench_dynamic_writes_csv_json_png(tmp_path):
    from dypipe import bench
    from dypipe.bench import main
    records, figures = main("dynamic", SMALL, tmp_path, only={"seq2seq-rnn-8"},
                            log=lambda *a: None)
    assert figures["all_verified"] and len(records) == 3
    static = {r["mode"]: r for r in records}["static"]["cycles"]
    dyn = {r["mode"]: r for r in records}["dypipe"]["cycles"]
    assert figures["seq2seq_8_geomean_dypipe_vs_static"] == round(static / dyn, 4)
    for name in ("dynamic.csv", "dynamic.json", "fig10.png", "fig11-dynamic.png"):
        assert (tmp_path / name).stat().st_size > 0
    rec = {r["mode"]: r for r in records}["dypipe"]
    assert rec["workload"] == "seq2seq-rnn-8" and len(rec["lengths"]) == 16
    assert rec["steps"] == sum(a + b for a, b in rec["lengths"])
    with pytest.raises(ValueError, match="unknown workload"):
        bench.bench_dynamic(SMALL, only={"no-such-workload"})


@pytest.mark.verilator
@pytest.mark.parametrize("mode", MODES)
def test_early_exit(mode):
    """The accelerator's gate decides: each mode runs the path it says, bit-exact; with the
    exit taken, block 2 neither runs (fewer cycles, fewer bytes written) nor is expected."""
    from dypipe.sw.early_exit import random_early_exit
    runs = {}
    for take in (True, False):
        wl = random_early_exit(SMALL, take=take, mode=mode)
        assert wl.meta["taken"] == take
        assert ("y" in wl.expected) == (not take) and "y_exit" in wl.expected
        r = run_workload(wl)
        assert r.verified, f"{mode}, take={take}: {r.mismatches}"
        runs[take] = r
    assert runs[True].cycles < runs[False].cycles
    assert runs[True].counters["dram_write_bytes"] < runs[False].counters["dram_write_bytes"]


@pytest.mark.verilator
def test_early_exit_dypipe_against_static():
    """DyPipe's speculative loads of block 2 run beside the exit classifier (placed clear of
    it), so DyPipe is no slower than static when the exit is taken and faster when it is not
    (cycles from the RTL, compared, not fixed)."""
    from dypipe.sw.early_exit import random_early_exit
    cycles = {(take, mode): run_workload(random_early_exit(SMALL, take=take, mode=mode)).cycles
              for take in (True, False) for mode in ("static", "dypipe")}
    assert cycles[True, "dypipe"] <= cycles[True, "static"]
    assert cycles[False, "dypipe"] < cycles[False, "static"]
