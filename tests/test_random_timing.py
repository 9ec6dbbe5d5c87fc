"""Random memory timing: the DRAM model refuses requests and answers reads late at random
(:mod:`dypipe.tb.mem_timing`). Every kind of workload, in every mode, must give the same
bit-exact results under several seeds; and the two simulators still agree cycle for cycle.
(The whole suite runs under one seed with ``DYPIPE_RANDOM_TIMING=SEED make test``.)"""

import pytest

from dypipe.config import PRESETS
from dypipe.nets import NetworkJob
from dypipe.sw.fc import random_fc
from dypipe.sw.seq2seq import random_seq2seq
from dypipe.sw.treelstm import random_treelstm
from dypipe.sw.workload import MODES
from dypipe.sw.workloads import build_workload
from dypipe.tb.amaranth_sim import simulate
from dypipe.tb.mem_timing import MemTiming
from dypipe.tb.runner import run_workload

pytestmark = pytest.mark.verilator
SMALL = PRESETS["small"]

WORKLOADS = {
    "fc": lambda mode: build_workload("fc", SMALL, mode),
    "conv": lambda mode: build_workload("conv", SMALL, mode, size="6x7x10x9x3x1x1", seed=3),
    "pool": lambda mode: build_workload("pool", SMALL, mode),
    "eltwise": lambda mode: build_workload("eltwise", SMALL, mode),
    "branch": lambda mode: build_workload("branch", SMALL, mode, seed=1),
    "seqloop": lambda mode: build_workload("seqloop", SMALL, mode, size="3x8"),
    "seq2seq-lstm": lambda mode: random_seq2seq(SMALL, "lstm", sentences=3, hidden=8,
                                                max_length=4, seed=2, stream=True, mode=mode),
    "treelstm": lambda mode: random_treelstm(SMALL, 5, seed=5, mode=mode),
    "early-exit": lambda mode: build_workload("early-exit-continue", SMALL, mode),
    "squeezenet": lambda mode: NetworkJob(SMALL, "squeezenet").workload(mode),
}
#: (seed, percent of cycles refused, most extra cycles a read)
TIMINGS = [(1, 25, 16), (2, 60, 40)]


@pytest.mark.parametrize("timing", TIMINGS, ids=lambda t: f"seed{t[0]}")
@pytest.mark.parametrize("name", WORKLOADS)
def test_results_do_not_depend_on_memory_timing(name, timing):
    seed, stall, extra = timing
    for mode in MODES:
        r = run_workload(WORKLOADS[name](mode), timing=MemTiming(seed, stall, extra))
        assert r.verified, f"{name} {mode}: {r.mismatches}"
        assert r.counters["dram_refused"] > 0
        assert r.meta["mem_timing"] == {"seed": seed, "stall_percent": stall, "max_extra": extra}


@pytest.mark.parametrize("seed", [3, 0, 4_000_000_000])
def test_simulators_agree_under_random_memory_timing(seed):
    """Both DRAM models follow one rule, cycle for cycle (seed 0 starts the generator
    elsewhere, in both)."""
    timing = MemTiming(seed, stall_percent=40, max_extra=20)
    workload = random_fc(SMALL, 30, 20, seed=2, mode="dypipe")
    fast = run_workload(workload, timing=timing)
    slow = simulate(workload, timing=timing)
    nominal = run_workload(workload, timing=False)
    assert fast.verified and not workload.check(slow["outputs"])
    assert slow["counters"] == fast.counters
    assert fast.cycles > nominal.cycles and nominal.counters["dram_refused"] == 0


def test_bad_timing_is_refused_with_a_clear_error():
    for bad in (dict(seed=-1), dict(seed=1, stall_percent=91), dict(seed=1, max_extra=256)):
        with pytest.raises(ValueError, match="random memory timing"):
            MemTiming(**bad)
