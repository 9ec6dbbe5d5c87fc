"""Whole-system tests: compiled workloads on the RTL through Verilator and cocotb, checked bit
for bit against the golden model, with cycle counts checked against derived bounds."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from dypipe.config import PRESETS
from dypipe.sw.fc import random_fc
from dypipe.sw.workload import MODES
from dypipe.sw.workloads import build_workload
from dypipe.tb.runner import run_workload

pytestmark = pytest.mark.verilator
SMALL = PRESETS["small"]
ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_modes(make):
    results = {mode: run_workload(make(mode)) for mode in MODES}
    for mode, r in results.items():
        assert r.verified, f"{mode}: {r.mismatches}"
    return results


def array_macs(config, n_out, n_in):
    """The MACs the PFU's array does for an FC layer: its outputs in blocks of ``pe_rows``,
    its inputs in blocks of ``pe_cols``, padded."""
    return (-(-n_out // config.pe_rows) * config.pe_rows
            * -(-n_in // config.pe_cols) * config.pe_cols)


def dram_bound(config, counters):
    """No run can beat the memory port: every byte moved costs 1/bytes_per_cycle."""
    moved = counters["dram_read_bytes"] + counters["dram_write_bytes"]
    return moved // config.dram_bytes_per_cycle


@pytest.mark.parametrize("n_out,n_in", [(99, 70), (13, 9), (37, 130), (64, 64), (37, 1500)])
def test_fc_small_all_modes(n_out, n_in):
    results = run_modes(lambda mode: random_fc(SMALL, n_out, n_in, seed=n_out, mode=mode))
    for r in results.values():
        assert r.cycles >= dram_bound(SMALL, r.counters)
        assert r.counters["macs"] == array_macs(SMALL, n_out, n_in)
    if results["dypipe"].meta["tiling"]["tiles"] > 1:   # with one tile there is nothing to overlap
        assert results["static"].cycles < results["nonepipe"].cycles
        assert results["dypipe"].cycles < results["nonepipe"].cycles


def test_fc_pipelines_to_the_busiest_module():
    """Several tiles: static and DyPipe overlap Load, Compute and Store almost perfectly."""
    results = run_modes(lambda mode: random_fc(SMALL, 200, 150, seed=3, mode=mode))
    for mode in ("static", "dypipe"):
        c = results[mode].counters
        busiest = max(c["busy_io"], c["busy_pfu"], c["busy_store"])
        assert results[mode].cycles <= 1.10 * busiest, (mode, results[mode].cycles, busiest)
    assert results["dypipe"].cycles <= results["static"].cycles / 0.97


def test_fc1_scaled_to_small_is_dram_bound():
    """Table 2's FC1 (1000 x 512), a quarter of it each way on ``small``, is DRAM-bound: within
    10% of the time its weights take through the memory port (at the nominal memory timing:
    the bound assumes it). FC1 itself on ``paper`` runs in ``make bench-ops``."""
    n_out, n_in = 250, 128
    r = run_workload(build_workload("fc", SMALL, "dypipe", size=f"{n_out}x{n_in}"),
                     timing=False)
    assert r.verified, r.mismatches
    weights_bound = n_out * n_in * 2 // SMALL.dram_bytes_per_cycle
    assert weights_bound <= r.cycles <= 1.10 * weights_bound, r.cycles
    assert r.counters["macs"] == array_macs(SMALL, n_out, n_in)


@pytest.mark.parametrize("seed", [0, 1])          # seed 0 takes B, seed 1 takes C
def test_branch_both_paths(seed):
    results = run_modes(lambda mode: build_workload("branch", SMALL, mode, seed=seed))
    assert results["dypipe"].meta["taken"] == "BC"[seed]
    assert results["dypipe"].cycles < results["static"].cycles <= results["nonepipe"].cycles


def test_seqloop_runs_exactly_the_needed_steps():
    results = run_modes(lambda mode: build_workload("seqloop", SMALL, mode))
    meta = results["dypipe"].meta
    lengths, n_seq = meta["lengths"], meta["sequences"]
    # One weight load, then three tasks a step: the real steps, or every step padded.
    assert results["dypipe"].counters["tasks"] == 1 + 3 * sum(lengths)
    assert results["nonepipe"].counters["tasks"] == 1 + 3 * sum(lengths)
    assert results["static"].counters["tasks"] == 1 + 3 * n_seq * meta["max_length"]
    assert results["dypipe"].cycles < results["static"].cycles
    assert results["dypipe"].cycles < results["nonepipe"].cycles


def test_worked_example_runs():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from batched_fc import batched_fc
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(5)
    x = rng.integers(-256, 256, (20, 6), dtype=np.int16)
    w = rng.integers(-60, 60, (10, 20), dtype=np.int16)
    b = rng.integers(-256, 256, 10, dtype=np.int16)
    r = run_workload(batched_fc(SMALL, x, w, b))
    assert r.verified, r.mismatches
    assert r.counters["tasks"] == 1 + 3 * 6


def dypipe_cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "dypipe.cli", *args], capture_output=True,
                          text=True, cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_cli_run_json(tmp_path):
    out = tmp_path / "fc.json"
    proc = dypipe_cli("run", "fc", "--config", "small", "--size", "20x30", "--json", str(out))
    record = json.loads(out.read_text())
    for key in ("workload", "config", "mode", "cycles", "verified"):
        assert key in record, key
    assert record["verified"] is True and record["workload"] == "fc"
    assert record["cycles"] == record["counters"]["cycles"] > 0
    assert set(record["modes"]) == {"dypipe"}
    assert str(record["cycles"]) in proc.stdout.replace(",", "")


def test_cli_run_all_modes_json(tmp_path):
    out = tmp_path / "seq.json"
    dypipe_cli("run", "seqloop", "--config", "small", "--mode", "all", "--size", "6x8",
               "--json", str(out))
    record = json.loads(out.read_text())
    assert set(record["modes"]) == set(MODES)
    for mode in MODES:
        entry = record["modes"][mode]
        assert entry["verified"] is True
        assert set(entry["counters"]["busy"]) == {"io", "pfu", "store"}
        assert entry["counters"]["busy"]["pfu"] == entry["counters"]["busy_pfu"] > 0
    assert len(record["lengths"]) == 6 and record["max_length"] == 20


def test_cli_set_overrides_a_preset_field(tmp_path):
    """--set builds and runs a variant of the preset: a longer DRAM latency costs cycles, the
    results are still exact, and the JSON says which configuration ran."""
    records = {}
    for extra in ([], ["--set", "dram_latency=40"]):
        out = tmp_path / f"fc{len(extra)}.json"
        dypipe_cli("run", "fc", "--config", "small", "--size", "20x30", "--json", str(out),
                   *extra)
        records[len(extra)] = json.loads(out.read_text())
    base, slow = records[0], records[2]
    assert base["verified"] and slow["verified"]
    assert base["config_fields"]["dram_latency"] == 10
    assert slow["config_fields"]["dram_latency"] == 40
    assert slow["config_overrides"] == ["dram_latency=40"]
    assert slow["cycles"] > base["cycles"]


def test_cli_rejects_bad_input():
    proc = dypipe_cli("run", "fc", "--size", "0x3", check=False)
    assert proc.returncode == 2 and "size must be" in proc.stderr, proc.stderr


def test_cli_verilog_passes_lint(tmp_path):
    out = tmp_path / "top.v"
    proc = dypipe_cli("verilog", "--config", "small", "-o", str(out), "--lint")
    assert out.exists() and "module dypipe_top" in out.read_text()
    assert "lint-only: clean" in proc.stderr


def test_waves(tmp_path):
    proc = dypipe_cli("run", "fc", "--size", "8x8", "--waves", "--keep", str(tmp_path))
    waves = list(tmp_path.rglob("dump.vcd")) + list(tmp_path.rglob("dump.fst"))
    assert waves, proc.stderr
    assert str(waves[0]) in proc.stderr
    if waves[0].suffix == ".vcd":
        assert "$var" in waves[0].read_text(errors="replace")[:200_000]


def test_cycle_limit_counts_what_cycles_counts():
    """--max-cycles counts cycles from the first instruction, as ``cycles`` does (boot apart):
    a run fits a limit of its own cycle count and times out one below it."""
    from dypipe.tb.runner import SimulationTimeout
    wl = build_workload("seqloop", SMALL, "static", size="4x8")
    r = run_workload(wl)
    assert r.counters["boot_cycles"] > 0
    assert run_workload(wl, max_cycles=r.cycles + 1).cycles == r.cycles
    with pytest.raises(SimulationTimeout):
        run_workload(wl, max_cycles=r.cycles - 1)


def test_cli_sweep_writes_csv_json_png(tmp_path):
    """A 2 x 1 grid (the builds are the ones the --set test uses): every point verified, the
    longer latency slower, the files written."""
    out = tmp_path / "sweep"
    dypipe_cli("sweep", "fc", "--config", "small", "--size", "20x30", "--mode", "dypipe",
               "--set-range", "dram_latency=10,40", "--out", str(out))
    data = json.loads((out / "sweep.json").read_text())
    assert data["grid"] == {"dram_latency": ["10", "40"]}
    recs = {r["dram_latency"]: r for r in data["records"]}
    assert set(recs) == {10, 40} and all(r["verified"] for r in recs.values())
    assert recs[40]["cycles"] > recs[10]["cycles"]
    assert recs[40]["config_fields"]["dram_latency"] == 40
    assert (out / "sweep.png").stat().st_size > 0 and (out / "sweep.csv").exists()
