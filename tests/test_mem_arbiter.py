"""The memory arbiter (``rtl/mem_port.py``) alone in Amaranth's simulator: requests reach the
memory once each, in the order the clients handed them over, under random asking and random
back-pressure; a client's ``ready`` does not follow the memory's ``req_ready`` in the same
cycle; clients that all ask share the port a beat a cycle, in turn."""

import random

import pytest
from amaranth.sim import Simulator

from dypipe.config import PRESETS
from dypipe.rtl.mem_port import ARBITER_LATENCY, MemArbiter

CFG = PRESETS["small"]
N = 3


def simulate(bench_fn):
    dut = MemArbiter(CFG, N)
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def bench(ctx):
        await bench_fn(ctx, dut)

    sim.add_testbench(bench)
    sim.run()
    return dut


@pytest.mark.parametrize("p_ask, p_ready", [(1.0, 1.0), (0.5, 0.6), (0.2, 0.3), (0.9, 0.1)])
def test_requests_reach_the_memory_once_in_the_order_handed_over(p_ask, p_ready):
    rng = random.Random(int(p_ask * 100 + p_ready * 10))
    handed, seen, stats = [], [], {"beats": 0}
    cycles = 400

    async def bench(ctx, dut):
        offers = [None] * N
        for cycle in range(cycles):
            for c in range(N):
                if offers[c] is None and rng.random() < p_ask:
                    write = rng.random() < 0.5
                    offers[c] = (write, rng.getrandbits(CFG.dram_addr_bits),
                                 rng.getrandbits(CFG.beat_bits) if write else 0,
                                 rng.getrandbits(CFG.dram_bytes_per_cycle) if write else 0)
                req = dut.clients[c].req
                ctx.set(req.valid, offers[c] is not None)
                if offers[c] is not None:
                    write, addr, wdata, wmask = offers[c]
                    ctx.set(req.payload.write, write)
                    ctx.set(req.payload.addr, addr)
                    ctx.set(req.payload.wdata, wdata)
                    ctx.set(req.payload.wmask, wmask)
            ctx.set(dut.dram.req_ready, rng.random() < p_ready)
            await ctx.delay(1e-10)
            if ctx.get(dut.dram.req_valid) and ctx.get(dut.dram.req_ready):
                write = ctx.get(dut.dram.req_write)
                seen.append((ctx.get(dut.dram.req_tag), (
                    write, ctx.get(dut.dram.req_addr),
                    ctx.get(dut.dram.req_wdata) if write else 0,
                    ctx.get(dut.dram.req_wmask) if write else 0)))
                assert ctx.get(dut.write_beat) == write and ctx.get(dut.read_beat) == (not write)
                stats["beats"] += 1
            else:
                assert not ctx.get(dut.read_beat) and not ctx.get(dut.write_beat)
            assert ctx.get(dut.refused) == (ctx.get(dut.dram.req_valid)
                                            and not ctx.get(dut.dram.req_ready))
            taken = [c for c in range(N)
                     if offers[c] is not None and ctx.get(dut.clients[c].req.ready)]
            assert len(taken) <= 1
            for c in taken:
                handed.append((c, offers[c]))
                offers[c] = None
            await ctx.tick()

    simulate(bench)
    assert seen == handed[:len(seen)] and len(handed) - len(seen) <= 2
    if p_ask == p_ready == 1.0:
        # Three clients always asking: one hands over in each cycle, and from the output
        # register on a beat leaves every cycle, each client in turn (client 1 first: the
        # turn starts after the last grant, 0 after reset).
        assert stats["beats"] == cycles - ARBITER_LATENCY
        assert [tag for tag, _ in seen[:6]] == [1, 2, 0, 1, 2, 0]


def test_ready_does_not_follow_the_memory():
    """Whatever the memory's ``req_ready`` does within a cycle, each client's ``ready`` stays
    as it was: it follows the output register's room."""
    rng = random.Random(5)

    async def bench(ctx, dut):
        for _ in range(80):
            for c in range(N):
                ctx.set(dut.clients[c].req.valid, rng.random() < 0.5)
            readies = set()
            for _ in range(4):
                ctx.set(dut.dram.req_ready, rng.random() < 0.3)
                await ctx.delay(1e-10)
                readies.add(tuple(ctx.get(dut.clients[c].req.ready) for c in range(N)))
            assert len(readies) == 1
            await ctx.tick()

    simulate(bench)


def test_stop_grants_nothing_and_what_was_handed_over_still_goes_out():
    log = []

    async def bench(ctx, dut):
        ctx.set(dut.clients[1].req.valid, 1)
        ctx.set(dut.clients[1].req.payload.addr, 7)
        await ctx.tick()                                # handed over; the memory is not ready
        ctx.set(dut.stop, 1)
        for ready in (0, 1, 1):
            ctx.set(dut.dram.req_ready, ready)
            await ctx.delay(1e-10)
            valid = ctx.get(dut.dram.req_valid)
            log.append((ctx.get(dut.clients[1].req.ready), valid,
                        ctx.get(dut.dram.req_addr) if valid else None, ctx.get(dut.idle)))
            await ctx.tick()

    simulate(bench)
    assert log == [(0, 1, 7, 0), (0, 1, 7, 0), (0, 0, None, 1)]


def test_responses_go_to_the_client_the_tag_names():
    async def bench(ctx, dut):
        ctx.set(dut.dram.resp_data, 0x1234)
        for tag in range(N):
            ctx.set(dut.dram.resp_valid, 1)
            ctx.set(dut.dram.resp_tag, tag)
            await ctx.delay(1e-10)
            assert [ctx.get(dut.clients[c].resp_valid) for c in range(N)] == [
                int(c == tag) for c in range(N)]
            assert ctx.get(dut.clients[tag].resp_data) == 0x1234
            await ctx.tick()

    simulate(bench)
