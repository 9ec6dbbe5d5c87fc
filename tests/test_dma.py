"""DMA engines + memory arbiter + global buffer in Amaranth's simulator, with a Python DRAM."""

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from dypipe.config import PRESETS
from dypipe.rtl.dma import LoadDMA, StoreDMA
from dypipe.rtl.global_buffer import GlobalBuffer, bank_beats
from dypipe.rtl.mem_port import ARBITER_LATENCY, MemArbiter, DramPort
from dypipe.sw.isa import Buf, Err, Op, DMA_PARAMS
from dypipe.tb.amaranth_sim import dram_model

CFG = PRESETS["small"]


class Bench(wiring.Component):
    def __init__(self):
        self.load, self.store = LoadDMA(CFG), StoreDMA(CFG)
        self.gbuf, self.arb = GlobalBuffer(CFG), MemArbiter(CFG, 2)
        super().__init__({"dram": Out(DramPort(CFG, self.arb.tag_bits))})

    def elaborate(self, platform):
        m = Module()
        for name in ("load", "store", "gbuf", "arb"):
            m.submodules[name] = getattr(self, name)
        wiring.connect(m, self.load.buf, self.gbuf.dma_w)
        wiring.connect(m, self.store.buf, self.gbuf.dma_r)
        wiring.connect(m, self.load.mem, self.arb.clients[0])
        wiring.connect(m, self.store.mem, self.arb.clients[1])
        wiring.connect(m, self.arb.dram, wiring.flipped(self.dram))
        return m


async def run_cmd(ctx, unit, buf, params, limit=5000, planes=True):
    """One command: the 3-D DLOAD3 / DSTORE3, or (``planes=False``) DLOAD / DSTORE, which must
    ignore whatever the plane registers hold. The parameters change after the handshake: the
    engine must run the command it took. It may report an error only while not ready."""
    params = {"planes": 1, **params} if planes else {
        "planes": 7, "dram_plane_stride": 12345, "buf_plane_stride": 999, **params}
    for i, name in enumerate(DMA_PARAMS):
        ctx.set(unit.cmd.macro.payload.params[i], params.get(name, 0))
    ops = {LoadDMA: (Op.DLOAD, Op.DLOAD3), StoreDMA: (Op.DSTORE, Op.DSTORE3)}[type(unit)]
    ctx.set(unit.cmd.macro.payload.op, ops[planes])
    ctx.set(unit.cmd.macro.payload.a, buf)
    ctx.set(unit.cmd.macro.valid, 1)
    await ctx.tick()
    ctx.set(unit.cmd.macro.valid, 0)
    for i, name in enumerate(DMA_PARAMS):
        ctx.set(unit.cmd.macro.payload.params[i], params.get(name, 0) ^ 0x5A5)
    for n in range(limit):
        if ctx.get(unit.cmd.done):
            await ctx.tick()
            return ("done", n)
        if ctx.get(unit.cmd.err):
            assert not ctx.get(unit.cmd.macro.ready)
            return ("err", Err(ctx.get(unit.cmd.err_code)), ctx.get(unit.cmd.err_addr))
        await ctx.tick()
    raise AssertionError("DMA did not finish")


def run(testbench, mem):
    bench = Bench()
    sim = Simulator(bench)
    sim.add_clock(1e-8)
    sim.add_testbench(dram_model(bench.dram, CFG, mem), background=True)

    async def bound(ctx):
        await testbench(ctx, bench)
    sim.add_testbench(bound)
    sim.run()


@pytest.mark.parametrize("planes", [True, False], ids=["3d", "2d"])
@pytest.mark.parametrize("buf", list(Buf))
def test_strided_load_then_store(buf, planes):
    rows, row_beats = 3, 2
    src = {1000 + i * 7 + j: (i * 100 + j + 1) * 0x0101_0101_0101 for i in range(rows)
           for j in range(row_beats)}
    mem = dict(src)
    seen = {}

    async def testbench(ctx, bench):
        seen["load"] = await run_cmd(ctx, bench.load, buf, dict(
            dram_addr=1000, buf_addr=5, rows=rows, row_beats=row_beats, dram_stride=7,
            buf_stride=3), planes=planes)
        seen["store"] = await run_cmd(ctx, bench.store, buf, dict(
            dram_addr=2000, buf_addr=5, rows=rows, row_beats=row_beats, dram_stride=4,
            buf_stride=3), planes=planes)

    run(testbench, mem)
    assert seen["load"][0] == "done" and seen["store"][0] == "done", seen
    # Pipelined: a transfer costs about its beats plus one DRAM latency.
    assert seen["load"][1] <= rows * row_beats + CFG.dram_latency + 4, seen["load"]
    assert seen["store"][1] <= rows * row_beats + 6, seen["store"]
    for i in range(rows):
        for j in range(row_beats):
            got, exp = mem.get(2000 + 4 * i + j), src[1000 + 7 * i + j]
            assert got == exp, f"row {i} beat {j}: {got:#x}, expected {exp:#x}"


@pytest.mark.parametrize("buf", [Buf.NBIN, Buf.NBOUT])
def test_three_dimensional_load_then_store(buf):
    """Planes of strided rows on both sides: a tile of 2 image rows x 3 pixels x 2 beats from a
    tensor with a halo (DRAM rows 11 beats apart, pixels 3 apart) packed in the bank, then
    stored into another layout."""
    planes, rows, row_beats = 2, 3, 2
    src = {100 + p * 11 + i * 3 + j: (p * 1000 + i * 100 + j + 1) * 0x0001_0001_0001
           for p in range(planes) for i in range(rows) for j in range(row_beats)}
    mem = dict(src)
    seen = {}
    geometry = dict(planes=planes, rows=rows, row_beats=row_beats, buf_addr=4, buf_stride=2,
                    buf_plane_stride=6)

    async def testbench(ctx, bench):
        seen["load"] = await run_cmd(ctx, bench.load, buf, dict(
            dram_addr=100, dram_stride=3, dram_plane_stride=11, **geometry))
        seen["store"] = await run_cmd(ctx, bench.store, buf, dict(
            dram_addr=3000, dram_stride=5, dram_plane_stride=20, **geometry))

    run(testbench, mem)
    assert seen["load"][0] == "done" and seen["store"][0] == "done", seen
    n = planes * rows * row_beats
    assert seen["load"][1] <= n + CFG.dram_latency + 4, seen["load"]
    for p in range(planes):
        for i in range(rows):
            for j in range(row_beats):
                got, exp = mem.get(3000 + 20 * p + 5 * i + j), src[100 + 11 * p + 3 * i + j]
                assert got == exp, f"plane {p} row {i} beat {j}: {got:#x}, expected {exp:#x}"


def test_long_load_streams_one_beat_per_cycle():
    n = 200
    mem = {i: i + 1 for i in range(n)}
    seen = {}

    async def testbench(ctx, bench):
        seen["load"] = await run_cmd(ctx, bench.load, Buf.SB, dict(rows=1, row_beats=n))

    run(testbench, mem)
    # Cycle 0 checks the ranges, requests go out on cycles 1..n (the grant is the load's from
    # reset), reach the memory ARBITER_LATENCY cycles later, and the last one's data arrives
    # dram_latency cycles after that and completes the transfer in that cycle.
    assert seen["load"] == ("done", n + ARBITER_LATENCY + CFG.dram_latency), seen


@pytest.mark.parametrize("unit", ["load", "store"])
@pytest.mark.parametrize("params,code,addr", [
    (dict(rows=0, row_beats=1), Err.BAD_PARAM, 0),
    (dict(rows=1, row_beats=1, planes=0), Err.BAD_PARAM, 0),
    (dict(dram_addr=CFG.dram_beats - 30, rows=1, row_beats=2, planes=3, dram_plane_stride=15),
     Err.DRAM_RANGE, CFG.dram_beats + 1),
    (dict(dram_addr=CFG.dram_beats - 2, rows=2, row_beats=2, dram_stride=2), Err.DRAM_RANGE,
     CFG.dram_beats + 1),
    (dict(buf_addr=bank_beats(CFG, Buf.NBOUT) - 1, rows=1, row_beats=2), Err.BUF_RANGE,
     bank_beats(CFG, Buf.NBOUT)),
    (dict(buf_addr=0, rows=2, row_beats=1, buf_stride=1, planes=2,
          buf_plane_stride=bank_beats(CFG, Buf.NBOUT) - 1), Err.BUF_RANGE,
     bank_beats(CFG, Buf.NBOUT)),
])
def test_range_errors(unit, params, code, addr):
    mem = {}
    seen = {}

    async def testbench(ctx, bench):
        seen["r"] = await run_cmd(ctx, getattr(bench, unit), Buf.NBOUT, params)

    run(testbench, mem)
    assert seen["r"][:2] == ("err", code), seen
    if code != Err.BAD_PARAM:
        assert seen["r"][2] == addr, f"error address {seen['r'][2]}, expected {addr}"
    assert not mem, "a rejected transfer wrote DRAM"
