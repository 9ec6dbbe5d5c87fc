"""Random task graphs on the RTL: the dispatcher may reorder, the results may not change.

The graphs, the SPAWN variant and the serial model are :mod:`dypipe.fuzz`'s (``make fuzz``
runs thousands); here a few, shrunk by hypothesis when one fails, and one long program.
"""

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

from dypipe.fuzz import build, random_tasks, numpy_drawers, run_batch, make_batch
from dypipe.tb.mem_timing import MemTiming
from dypipe.tb.runner import run_workload

pytestmark = pytest.mark.verilator


@st.composite
def programs(draw, max_tasks=14):
    pick = lambda lo, hi: draw(st.integers(lo, hi))
    choose = lambda seq: draw(st.sampled_from(seq))
    return random_tasks(pick, choose, draw(st.integers(1, max_tasks)))


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs(), st.integers(0, 1000), st.booleans())
def test_random_programs_match_serial_execution(tasks, seed, spawn):
    r = run_workload(build([(tasks, spawn)], seed))
    assert r.verified, f"{tasks}: {r.mismatches}"


@pytest.mark.parametrize("spawn", [False, True], ids=["savepc", "spawn"])
def test_long_random_program_matches_serial_execution(spawn):
    """One long program: the ring fills and wraps, slots are reused many times (and with
    spawns, every template number is defined again three times)."""
    tasks = random_tasks(*numpy_drawers(np.random.default_rng(7)), 120)
    r = run_workload(build([(tasks, spawn)], 7))
    assert r.verified, r.mismatches
    if not spawn:       # (a definition per task: there the control unit sets the pace)
        # The dispatcher overlapped work: fewer cycles than the modules' busy cycles added up.
        c = r.counters
        assert r.cycles < c["busy_io"] + c["busy_pfu"] + c["busy_store"]


@pytest.mark.parametrize("seed", [1, 2])
def test_long_random_program_under_random_memory_timing(seed):
    """The same long program with the memory refusing requests and answering late at random:
    same results, more cycles, and the refusals counted."""
    tasks = random_tasks(*numpy_drawers(np.random.default_rng(7)), 120)
    workload = build([(tasks, True)], 7)
    fixed = run_workload(workload, timing=False)
    jittered = run_workload(workload, timing=MemTiming(seed, stall_percent=40, max_extra=30))
    assert fixed.verified and jittered.verified, jittered.mismatches
    assert fixed.counters["dram_refused"] == 0 < jittered.counters["dram_refused"]
    assert jittered.cycles > fixed.cycles


def test_a_fuzz_batch_runs_clean_and_names_a_failing_graph(monkeypatch):
    """One batch of ``make fuzz``: eight graphs in one run pass; and when the model expects
    something else of graph 5, the batch names graph 5 and no other."""
    batch = make_batch(0, 11, 8)
    index, cycles, failed, _ = run_batch(batch)
    assert (index, failed) == (0, []) and cycles > 0
    import dypipe.fuzz as fuzz
    original = fuzz.serial

    def wrong(graphs, inits):
        expected = original(graphs, inits)
        expected["g5_data"] = expected["g5_data"] + 1
        return expected
    monkeypatch.setattr(fuzz, "serial", wrong)
    assert run_batch(batch)[2] == [5]
