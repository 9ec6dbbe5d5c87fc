"""Dispatcher unit tests in Amaranth's simulator, with modelled module sequencers."""

import dataclasses

import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings, HealthCheck, strategies as st

from dypipe.config import PRESETS
from dypipe.rtl.dispatcher import Dispatcher
from dypipe.rtl.task import space_beats
from dypipe.sw.isa import Err, Space, MODULE_UNITS, FOOTPRINT_RANGES

CFG = PRESETS["small"]
IO, PFU, ST = (u.value for u in MODULE_UNITS)


@dataclasses.dataclass
class T:
    """A task for the test: unit, duration in cycles, footprint ranges (space, lo, len, write);
    ``barrier`` when no footprint is given."""
    unit: int
    cycles: int = 5
    ranges: tuple = ()
    barrier: bool = False


def R(space, lo, length, write):
    return (Space[space], lo, length, write)


def conflict(a, b):
    if a.barrier or b.barrier:
        return True
    return any(sa == sb and (wa or wb) and la and lb and lo_a < lo_b + lb and lo_b < lo_a + la
               for sa, lo_a, la, wa in a.ranges for sb, lo_b, lb, wb in b.ranges)


def simulate(tasks, *, max_cycles=3000, commit_gap=0):
    """Commit ``tasks`` in order (as fast as the dispatcher takes them) and model each module
    taking an offered task when idle, waiting for ``go`` and then running it for its duration.
    Returns (events, error) where events maps task index to (commit, issue, start, finish)
    cycles (start: the first cycle with ``go``)."""
    dut = Dispatcher(CFG)
    events = {i: [None, None, None, None] for i in range(len(tasks))}
    state = {"error": None, "ready_low_while_full": False}

    async def bench(ctx):
        # unit -> [task, end cycle], the end None while the task waits for go
        running = {u: None for u in range(len(MODULE_UNITS))}
        nxt, cycle = 0, 0
        gap = 0
        while cycle < max_cycles:
            # Present the next task.
            present = nxt < len(tasks) and gap == 0
            ctx.set(dut.task.valid, present)
            if present:
                t = tasks[nxt]
                p = dut.task.payload
                ctx.set(p.unit, t.unit)
                ctx.set(p.pc, 100 + nxt)
                ctx.set(p.slot, nxt % CFG.cb_slots)
                ctx.set(p.barrier, t.barrier)
                for i in range(FOOTPRINT_RANGES):
                    sp, lo, ln, wr = t.ranges[i] if i < len(t.ranges) else (Space.NONE, 0, 0, 0)
                    # Raw bits: the tests also send spaces that do not exist.
                    ctx.set(p.ranges[i].desc.space.as_value(), getattr(sp, "value", sp))
                    ctx.set(p.ranges[i].desc.lo, lo)
                    ctx.set(p.ranges[i].desc.write, wr)
                    ctx.set(p.ranges[i].len, ln)
            # Modules: accept an issued task when idle; start it on go; pulse finished at the end.
            for u in running:
                if running[u] is not None and running[u][1] is None and ctx.get(dut.go[u]):
                    i = running[u][0]
                    events[i][2] = cycle
                    running[u][1] = cycle + tasks[i].cycles
                ctx.set(dut.issue[u].ready, running[u] is None)
                done = running[u] is not None and running[u][1] == cycle
                ctx.set(dut.finished[u], done)
                ctx.set(dut.released[u], done)    # this model releases a task as it ends
            if ctx.get(dut.err.valid):
                state["error"] = (Err(ctx.get(dut.err.code)), ctx.get(dut.err.pc))
                return
            accepted = present and ctx.get(dut.task.ready)
            issued = {u: ctx.get(dut.issue[u].payload.pc) - 100 for u in running
                      if running[u] is None and ctx.get(dut.issue[u].valid)}
            finished = [u for u in running if running[u] is not None and running[u][1] == cycle]
            await ctx.tick()
            cycle += 1
            if accepted:
                events[nxt][0] = cycle
                nxt += 1
                gap = commit_gap
            elif gap:
                gap -= 1
            for u in finished:
                events[running[u][0]][3] = cycle
                running[u] = None
            for u, i in issued.items():
                assert tasks[i].unit == u, f"task {i} of unit {tasks[i].unit} issued to {u}"
                events[i][1] = cycle
                running[u] = [i, None]
            if nxt == len(tasks) and all(e[3] is not None for e in events.values()):
                assert ctx.get(dut.idle)
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return events, state["error"]


def check_schedule(tasks, events):
    """Every task ran; none was issued before an older task of its module ended (this model
    releases a task as it finishes), none started before an older conflicting task ended."""
    for i, (c, issue, start, f) in events.items():
        assert None not in (c, issue, start, f), f"task {i} never finished: {events[i]}"
        for j in range(i):
            if tasks[j].unit == tasks[i].unit:
                assert issue >= events[j][3], (f"task {i} issued at {issue} before older task "
                                               f"{j} of its module ended at {events[j][3]}")
            if conflict(tasks[j], tasks[i]):
                assert start >= events[j][3], (f"task {i} started at {start} before older "
                                               f"task {j} finished at {events[j][3]}")


def test_different_modules_run_in_parallel():
    tasks = [T(IO, 20, (R("NBIN", 0, 4, 1),)), T(PFU, 20, (R("SB", 0, 4, 0),)),
             T(ST, 20, (R("NBOUT", 0, 4, 0),))]
    events, err = simulate(tasks)
    assert err is None
    check_schedule(tasks, events)
    starts = [events[i][2] for i in range(3)]
    assert max(starts) - min(starts) <= 3, f"independent tasks started at {starts}"


def test_same_module_runs_in_order():
    tasks = [T(IO, 10, (R("NBIN", 0, 4, 1),)), T(IO, 10, (R("SB", 0, 4, 1),))]
    events, err = simulate(tasks)
    check_schedule(tasks, events)
    assert events[1][1] >= events[0][3]


@pytest.mark.parametrize("kind,older,newer", [
    ("RAW", R("NBIN", 0, 4, 1), R("NBIN", 3, 2, 0)),
    ("WAR", R("SB", 8, 8, 0), R("SB", 0, 9, 1)),
    ("WAW", R("NBOUT", 2, 2, 1), R("NBOUT", 3, 1, 1)),
    ("RAW-DRAM", R("DRAM", 500, 10, 1), R("DRAM", 509, 1, 0)),
])
def test_hazard_held_then_released(kind, older, newer):
    tasks = [T(IO, 30, (older,)), T(PFU, 5, (newer,))]
    events, err = simulate(tasks)
    assert err is None
    check_schedule(tasks, events)
    # Issued at once (its prologue may run), held at go exactly until the older task finished.
    assert events[1][1] < events[0][2] + 5, f"{kind}: {events}"
    assert 0 <= events[1][2] - events[0][3] <= 1, f"{kind}: {events}"


@pytest.mark.parametrize("older,newer", [
    (R("NBIN", 0, 4, 1), R("NBIN", 4, 2, 0)),     # adjacent, not overlapping
    (R("SB", 0, 8, 0), R("SB", 0, 8, 0)),         # both read
    (R("NBIN", 0, 4, 1), R("SB", 0, 4, 1)),       # different spaces
    (R("DRAM", 0, 0, 1), R("DRAM", 0, 9, 1)),     # empty range
])
def test_no_false_hazard(older, newer):
    tasks = [T(IO, 30, (older,)), T(PFU, 5, (newer,))]
    events, err = simulate(tasks)
    assert events[1][2] < events[0][3], f"held without a conflict: {events}"


def test_barrier_waits_for_all_and_holds_later():
    tasks = [T(IO, 15, (R("NBIN", 0, 1, 1),)), T(ST, 25, (R("DRAM", 0, 1, 1),)),
             T(PFU, 5, barrier=True), T(IO, 5, (R("SB", 0, 1, 1),))]
    events, err = simulate(tasks)
    check_schedule(tasks, events)
    assert events[2][2] >= max(events[0][3], events[1][3])
    assert events[3][2] >= events[2][3]


def test_ring_full_stalls_commit():
    n = CFG.task_ring + 3
    tasks = [T(IO, 10, (R("NBIN", i, 1, 1),)) for i in range(n)]
    events, err = simulate(tasks)
    check_schedule(tasks, events)
    # Task task_ring can only be committed once the first one has finished.
    assert events[CFG.task_ring][0] >= events[0][3], events


@pytest.mark.parametrize("task", [
    T(3, ranges=(R("NBIN", 0, 1, 0),)),
    T(IO, ranges=((7, 0, 1, 0),)),
    T(IO, ranges=(R("NBOUT", space_beats(CFG, Space.NBOUT) - 1, 2, 1),)),
])
def test_malformed_record_stops(task):
    events, err = simulate([T(PFU, 3, (R("SB", 0, 1, 0),)), task])
    assert err == (Err.BAD_TASK, 101), err


spaces = st.sampled_from(["NBIN", "SB", "NBOUT", "DRAM"])
ranges = st.builds(R, spaces, st.integers(0, 12), st.integers(0, 4), st.booleans())
tasks_st = st.builds(T, st.sampled_from([IO, PFU, ST]), st.integers(1, 12),
                     st.lists(ranges, max_size=FOOTPRINT_RANGES).map(tuple), st.just(False))
barrier_st = st.builds(T, st.sampled_from([IO, PFU, ST]), st.integers(1, 12),
                       st.just(()), st.just(True))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(tasks_st | barrier_st, min_size=1, max_size=20), st.integers(0, 2))
def test_random_task_graphs_respect_hazards(tasks, gap):
    events, err = simulate(tasks, commit_gap=gap)
    assert err is None
    check_schedule(tasks, events)


def test_long_random_sequence():
    """Many tasks in one simulation: the ring fills, drains and wraps many times."""
    import random
    rnd = random.Random(1234)
    tasks = []
    for _ in range(300):
        if rnd.random() < 0.03:
            tasks.append(T(rnd.choice([IO, PFU, ST]), rnd.randint(1, 9), barrier=True))
            continue
        rngs = tuple(R(rnd.choice(["NBIN", "SB", "NBOUT", "DRAM"]), rnd.randint(0, 20),
                       rnd.randint(0, 5), rnd.random() < 0.4)
                     for _ in range(rnd.randint(0, FOOTPRINT_RANGES)))
        tasks.append(T(rnd.choice([IO, PFU, ST]), rnd.randint(1, 9), rngs))
    events, err = simulate(tasks, max_cycles=20_000)
    assert err is None
    check_schedule(tasks, events)
    # The dispatcher overlapped work: fewer cycles than running every task back to back.
    span = max(e[3] for e in events.values())
    assert span < sum(t.cycles for t in tasks), span


def test_released_task_frees_its_module_but_not_its_data():
    """IO task 0 writes NBin[0, 4); once it is released (its code ended) IO task 1, which
    touches other rows, issues at once; PFU task 2, which reads task 0's rows, is offered at
    once (its prologue may run) but may not act (``go``) until task 0 has finished (its data
    landed)."""
    dut = Dispatcher(CFG)
    tasks = [(IO, [(Space.NBIN, 0, 4, 1)]), (IO, [(Space.NBIN, 8, 4, 1)]),
             (PFU, [(Space.NBIN, 0, 4, 0)])]
    seen = {}

    async def bench(ctx):
        for i, (unit, ranges) in enumerate(tasks):
            p = dut.task.payload
            ctx.set(dut.task.valid, 1)
            ctx.set(p.unit, unit)
            ctx.set(p.pc, 100 + i)
            ctx.set(p.slot, i)
            for k in range(FOOTPRINT_RANGES):
                sp, lo, ln, wr = ranges[k] if k < len(ranges) else (Space.NONE, 0, 0, 0)
                ctx.set(p.ranges[k].desc.space, sp)
                ctx.set(p.ranges[k].desc.lo, lo)
                ctx.set(p.ranges[k].desc.write, wr)
                ctx.set(p.ranges[k].len, ln)
            await ctx.tick()
        ctx.set(dut.task.valid, 0)
        ctx.set(dut.issue[IO].ready, 1)
        assert ctx.get(dut.issue[IO].valid) and ctx.get(dut.issue[IO].payload.pc) == 100
        await ctx.tick()                                   # task 0 runs on IO
        ctx.set(dut.issue[IO].ready, 0)
        seen["io_before_release"] = ctx.get(dut.issue[IO].valid)
        seen["io_go"] = ctx.get(dut.go[IO])
        ctx.set(dut.released[IO], 1)                       # task 0's END
        await ctx.tick()
        ctx.set(dut.released[IO], 0)
        seen["io_next"] = (ctx.get(dut.issue[IO].valid), ctx.get(dut.issue[IO].payload.pc))
        seen["pfu_offered"] = (ctx.get(dut.issue[PFU].valid),
                               ctx.get(dut.issue[PFU].payload.pc))
        ctx.set(dut.issue[PFU].ready, 1)
        ctx.set(dut.issue[IO].ready, 1)
        await ctx.tick()                                   # task 1 to IO, task 2 to PFU
        ctx.set(dut.issue[IO].ready, 0)
        ctx.set(dut.issue[PFU].ready, 0)
        seen["pfu_go_before_finish"] = ctx.get(dut.go[PFU])
        ctx.set(dut.finished[IO], 1)                       # task 0 finishes (oldest first)
        seen["retired_slot"] = ctx.get(dut.retire[IO].slot)
        await ctx.tick()
        ctx.set(dut.finished[IO], 0)
        seen["pfu_go_after_finish"] = ctx.get(dut.go[PFU])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert not seen["io_before_release"] and seen["io_go"]
    assert seen["io_next"] == (1, 101)
    assert seen["pfu_offered"] == (1, 102)
    assert not seen["pfu_go_before_finish"]
    assert seen["retired_slot"] == 0
    assert seen["pfu_go_after_finish"]
