"""Run a workload on the accelerator in Amaranth's own simulator, with a Python DRAM model.

Slow (thousands of cycles per second) but needs no compile: for unit-sized system tests. The
Verilator flow (:mod:`dypipe.tb.runner`) is what reports performance.
"""

import numpy as np
from amaranth.sim import Simulator

from ..rtl.perf import COUNTERS
from ..rtl.top import Top
from ..sw.isa import Err, Unit

__all__ = ["simulate", "dram_model"]


def _beat_int(elems):
    return int.from_bytes(np.asarray(elems, dtype=np.uint16).astype("<u2").tobytes(), "little")


def _int_beat(value, n):
    return np.frombuffer(value.to_bytes(2 * n, "little"), dtype="<u2").copy()


def dram_model(port, config, mem):
    """A background testbench serving a :func:`~dypipe.rtl.mem_port.DramPort` from ``mem``
    (beat address -> int): one request a cycle, byte-masked writes, reads answered in order
    ``config.dram_latency`` cycles later, as ``rtl/verilog/dypipe_dram.v`` does."""
    async def model(ctx):
        pending, cycle = {}, 0
        while True:
            if ctx.get(port.req_valid):
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
                    pending[cycle + config.dram_latency] = (mem.get(addr, 0),
                                                            ctx.get(port.req_tag))
            await ctx.tick()
            cycle += 1
            data, tag = pending.pop(cycle, (None, 0))
            ctx.set(port.resp_valid, data is not None)
            ctx.set(port.resp_data, data or 0)
            ctx.set(port.resp_tag, tag)
    return model


def simulate(workload, *, max_cycles=200_000, vcd=None):
    """Run ``workload``; returns ``dict(status, cycles, counters, outputs, error)`` where
    ``status`` is ``"done"``, ``"error"`` or ``"timeout"`` and ``error`` is
    ``(Err, Unit, pc, addr)`` or None."""
    cfg = workload.config
    dut = Top(cfg, dram="port", backend="amaranth")
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
    sim.add_testbench(dram_model(dut.dram, cfg, mem), background=True)
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
