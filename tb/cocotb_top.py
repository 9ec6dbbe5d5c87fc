"""The cocotb testbench of the whole accelerator.

The clock is made inside the simulation (the harness around the top, :mod:`dypipe.tb.harness`);
Python only starts the machine and awaits ``done``, ``error`` or the cycle limit: nothing
crosses into Python on a clock edge. Afterwards it reads the status and performance counters,
has the DRAM model dump the requested regions, and writes everything to a JSON file. The run
is described by the JSON file named in ``DYPIPE_SPEC`` (written by
:mod:`dypipe.tb.runner`): ``prog_len``, ``max_cycles``, ``dumps`` ([name, first, last] beats),
``dump_file`` (the model's +DRAM_DUMP), ``result`` (where to write).
"""

import json
import os
import shutil

import cocotb
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer

from dypipe.rtl.perf import COUNTERS, COUNTER_LAG
from dypipe.tb.harness import CLOCK_PERIOD_NS as PERIOD_NS


@cocotb.test()
async def run_program(dut):
    with open(os.environ["DYPIPE_SPEC"]) as f:
        spec = json.load(f)
    dut.rst.value = 1
    dut.start.value = 0
    dut.dump_valid.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    dut.prog_len.value = spec["prog_len"]
    dut.start.value = 1
    # The limit counts what ``cycles`` counts (from the first instruction; boot is apart):
    # wait that long, and again for the cycles boot took, until the counter reaches it.
    # A machine that neither boots nor runs any more (no counter moved) times out at once.
    left, progress = spec["max_cycles"], -1
    while left > 0:
        event = await First(RisingEdge(dut.done), RisingEdge(dut.error),
                            Timer(left * PERIOD_NS, unit="ns"))
        moved = int(dut.perf_cycles.value) + int(dut.perf_boot_cycles.value)
        if not isinstance(event, Timer) or moved == progress:
            break
        progress = moved
        left = spec["max_cycles"] - int(dut.perf_cycles.value) - COUNTER_LAG
    await ClockCycles(dut.clk, 1)
    result = {
        "status": "done" if dut.done.value else "error" if dut.error.value else "timeout",
        "counters": {name: int(getattr(dut, f"perf_{name}").value) for name in COUNTERS},
        "error": {name: int(getattr(dut, f"err_{name}").value)
                  for name in ("code", "unit", "pc", "addr")},
        "dumps": {},
    }
    dut.start.value = 0
    for k, (name, first, last) in enumerate(spec["dumps"]):
        dut.dump_lo.value = first
        dut.dump_hi.value = last
        dut.dump_valid.value = 1
        await RisingEdge(dut.clk)
        dut.dump_valid.value = 0
        await RisingEdge(dut.clk)
        target = f"{spec['dump_file']}.{k}"      # region names may hold any character
        shutil.copyfile(spec["dump_file"], target)
        result["dumps"][name] = target
    with open(spec["result"], "w") as f:
        json.dump(result, f)
