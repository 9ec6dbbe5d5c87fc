"""Run a workload on the accelerator in Amaranth's own simulator, with a Python DRAM model.

Slow (thousands of cycles per second) but needs no compile: for unit-sized system tests. The
Verilator flow (:mod:`dypipe.tb.runner`) is what reports performance.
"""

import collections

import numpy as np
from amaranth.sim import Simulator

from ..rtl.perf import COUNTERS
from ..rtl.top import Top
from ..sw.isa import Err, Unit
from .mem_timing import choose_timing, xorshift32

__all__ = ["simulate", "dram_model"]


def _beat_int(elems):
    return int.from_bytes(np.asarray(elems, dtype=np.uint16).astype("<u2").tobytes(), "little")


def _int_beat(value, n):
    return np.frombuffer(value.to_bytes(2 * n, "little"), dtype="<u2").copy()


def dram_model(port, config, mem, timing=None):
    """A background testbench serving a :func:`~dypipe.rtl.mem_port.DramPort` from ``mem``
    (beat address -> int) as ``rtl/verilog/dypipe_dram.v`` does: byte-masked writes, reads
    answered in order ``config.dram_latency`` cycles later, or under random ``timing`` (a
    :class:`~dypipe.tb.mem_timing.MemTiming`) with refused cycles and extra latency."""
    async def model(ctx):
        pending = collections.deque()           # (due cycle, data, tag), dues increasing
        cycle, last_due, r = 0, -1, timing.start if timing else 0
        while True:
            ready = timing.ready(r) if timing else True
            ctx.set(port.req_ready, ready)
            if ready and ctx.get(port.req_valid):
                addr = ctx.get(port.req_addr)
                if ctx.get(port.req_write):
                    mask, data = ctx.get(port.req_wmask), ctx.get(port.req_wdata)
                    old = mem.get(addr, 0)
                    for byte in range(config.dram_bytes_per_cycle):
                        if mask >> byte & 1:
                            sel = 0xFF << (8 * byte)
                            old = (old & ~sel) | (data & sel)
                    mem[addr] = old
                else:
                    due = cycle + config.dram_latency + (timing.extra(r) if timing else 0)
                    last_due = max(due, last_due + 1)
                    pending.append((last_due, mem.get(addr, 0), ctx.get(port.req_tag)))
            await ctx.tick()
            cycle += 1
            r = xorshift32(r) if timing else 0
            head = pending[0] if pending and pending[0][0] == cycle else None
            if head:
                pending.popleft()
            ctx.set(port.resp_valid, head is not None)
            ctx.set(port.resp_data, head[1] if head else 0)
            ctx.set(port.resp_tag, head[2] if head else 0)
    return model


def simulate(workload, *, max_cycles=200_000, vcd=None, timing=None):
    """Run ``workload`` (under random memory ``timing``, a
    :class:`~dypipe.tb.mem_timing.MemTiming`, chosen as :func:`~dypipe.tb.runner.run_workload`
    chooses it); returns ``dict(status, cycles, counters, outputs, error)`` where
    ``status`` is ``"done"``, ``"error"`` or ``"timeout"`` and ``error`` is
    ``(Err, Unit, pc, addr)`` or None."""
    cfg = workload.config
    timing = choose_timing(timing)
    dut = Top(cfg, backend="amaranth")
    beats = workload.image.beats(workload.program.words)
    mem = {i: _beat_int(row) for i, row in enumerate(beats) if row.any()}
    result = {}

    async def testbench(ctx):
        ctx.set(dut.prog_len, len(workload.program.words))
        ctx.set(dut.start, 1)
        for _ in range(max_cycles):
            if ctx.get(dut.done) or ctx.get(dut.error):
                break
            await ctx.tick()
        result["status"] = ("done" if ctx.get(dut.done) else
                            "error" if ctx.get(dut.error) else "timeout")
        result["counters"] = {name: ctx.get(getattr(dut, f"perf_{name}")) for name in COUNTERS}
        result["error"] = None
        if result["status"] == "error":
            result["error"] = (Err(ctx.get(dut.err_code)), Unit(ctx.get(dut.err_unit)),
                               ctx.get(dut.err_pc), ctx.get(dut.err_addr))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(dram_model(dut.dram, cfg, mem, timing), background=True)
    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    outputs = {}
    for name in workload.expected:
        region = workload.image.regions[name]
        rows = [_int_beat(mem.get(region.beat + i, 0), cfg.beat_elems)
                for i in range(region.beats)]
        outputs[name] = workload.image.extract(name, np.array(rows))
    result["outputs"] = outputs
    result["cycles"] = result["counters"]["cycles"]
    return result
