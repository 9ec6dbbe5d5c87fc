"""The task register between the control unit and the dispatcher (``rtl/task.py``): records
and their PCs come out in order, none lost or doubled, under random valid and ready, and one
a cycle when the dispatcher always takes them; ``held`` counts them; its ``i.ready`` does not
follow the dispatcher's ``ready`` in the same cycle."""

import random

import pytest
from amaranth.sim import Simulator

from dypipe.config import PRESETS
from dypipe.rtl.task import TaskRegister


@pytest.mark.parametrize("p_valid, p_ready", [(1.0, 1.0), (0.7, 0.4), (0.3, 0.9)])
def test_records_pass_in_order_one_a_cycle_at_most(p_valid, p_ready):
    dut = TaskRegister(PRESETS["small"])
    rng = random.Random(int(p_valid * 10 + p_ready * 100))
    sent, received = [], []
    cycles = 300

    async def bench(ctx):
        offer = None
        for _ in range(cycles):
            if offer is None and rng.random() < p_valid:
                offer = (rng.getrandbits(16), rng.getrandbits(16))
            ctx.set(dut.i.valid, offer is not None)
            if offer is not None:
                ctx.set(dut.i.payload.pc, offer[0])
                ctx.set(dut.i_pc, offer[1])
            ctx.set(dut.o.ready, rng.random() < p_ready)
            await ctx.delay(1e-9)
            assert ctx.get(dut.held) == len(sent) - len(received)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                received.append((ctx.get(dut.o.payload.rec.pc), ctx.get(dut.o_pc)))
            if offer is not None and ctx.get(dut.i.ready):
                sent.append(offer)
                offer = None
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert received == sent[:len(received)] and len(sent) - len(received) <= 2
    if p_valid == p_ready == 1.0:
        assert len(received) == cycles - 1       # the first record arrives a cycle late


def test_ready_comes_from_a_register_and_two_records_wait_for_a_stalled_dispatcher():
    dut = TaskRegister(PRESETS["small"])
    seen = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        for cycle in range(6):
            ctx.set(dut.i.payload.pc, cycle)
            readies = set()
            for o_ready in (0, 1, 0):           # the dispatcher changes its mind: i.ready does not
                ctx.set(dut.o.ready, o_ready)
                await ctx.delay(1e-9)
                readies.add(ctx.get(dut.i.ready))
            assert len(readies) == 1
            seen.append((readies.pop(), ctx.get(dut.held)))
            await ctx.tick()
        ctx.set(dut.o.ready, 1)
        out = []
        for cycle in range(3):
            await ctx.delay(1e-9)
            out.append(ctx.get(dut.o.payload.rec.pc))
            await ctx.tick()
        assert out[:2] == [0, 1]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # taken in cycles 0 and 1, then held (2) with ready low
    assert seen == [(1, 0), (1, 1), (0, 2), (0, 2), (0, 2), (0, 2)]
