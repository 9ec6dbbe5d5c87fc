"""The simulation harness: a Verilog module around the accelerator's top that makes the clock
itself and holds the DRAM model (``rtl/verilog/dypipe_dram.v``) on the top's memory port.
The cocotb testbench (:mod:`.cocotb_top`) only starts the machine and awaits ``done``,
``error`` or the cycle limit; nothing crosses into Python on a clock edge. The inputs the
testbench drives reach the top and the model through a register each (a cycle later), so
that no logic reads a signal Verilator must assume can change at any time. Kept light: the
testbench imports it inside the simulator."""

import pathlib
import re

from .mem_timing import MAX_EXTRA, MAX_STALL_PERCENT

__all__ = ["HARNESS", "CLOCK_PERIOD_NS", "DRAM_PREFIX", "DUMP_PORTS", "harness_verilog"]

HARNESS = "dypipe_harness"
#: The clock the harness makes (the testbench's timers count in it).
CLOCK_PERIOD_NS = 10
#: The top's memory port signals start with this (the ``dram`` member of its signature).
DRAM_PREFIX = "dram__"
#: The DRAM model's dump port, which the harness adds to the top's ports (valid, first and
#: last beat).
DUMP_PORTS = ("dump_valid", "dump_lo", "dump_hi")

_PORT = re.compile(r"^\s*(input|output)\s*(\[[^\]]+\])?\s*(\w+);", re.M)


def harness_verilog(top, toplevel, config, tag_bits):
    """A harness around module ``toplevel`` of the generated Verilog file ``top`` for
    ``config``: the top's ports but the clock (made here, :data:`CLOCK_PERIOD_NS`, ``clk`` as
    an output) and the memory port (wired to the DRAM model), plus the model's dump port
    (``dump_valid``, ``dump_lo``, ``dump_hi``). Simulated with Verilator ``--timing``."""
    text = pathlib.Path(top).read_text()
    body = text[text.index(f"module {toplevel}("):]
    body = body[:body.index("endmodule")]
    ports = _PORT.findall(body)
    outer = [(d, w or "", n) for d, w, n in ports if n != "clk" and not n.startswith(DRAM_PREFIX)]
    dram = [(w or "", n) for d, w, n in ports if n.startswith(DRAM_PREFIX)]
    addr = f"[{config.dram_addr_bits - 1}:0]"
    outer += [("input", w, n) for w, n in zip(("", addr, addr), DUMP_PORTS)]
    decls = "\n".join(f"  {d} {w} {n};" for d, w, n in outer)
    # The inputs enter through registers: no logic depends on a top-level input directly, so
    # Verilator's input-combinational region, evaluated at every eval, stays empty.
    inputs = [(w, n) for d, w, n in outer if d == "input"]
    decls += "".join(f"\n  reg {w} {n}_q;" for w, n in inputs)
    decls += "".join(f"\n  always @(posedge clk) {n}_q <= {n};" for w, n in inputs)
    inner = {n: f"{n}_q" if d == "input" else n for d, w, n in outer}
    wires = "\n".join(f"  wire {w} {n};" for w, n in dram)
    top_conns = ",\n    ".join([".clk(clk)"] + [f".{n}({inner[n]})" for _, _, n in outer
                                                if n not in DUMP_PORTS]
                               + [f".{n}({n})" for _, n in dram])
    dram_conns = ",\n    ".join([".clk(clk)", f".rst({inner['rst']})"]
                               + [f".{n[len(DRAM_PREFIX):]}({n})" for _, n in dram]
                               + [f".{n}({inner[n]})" for n in DUMP_PORTS])
    params = (f"    .WIDTH({config.beat_bits}), .DEPTH({config.dram_beats}), "
              f".ADDR_BITS({config.dram_addr_bits}),\n"
              f"    .LATENCY({config.dram_latency}), .TAG_BITS({tag_bits}), "
              f".MAX_EXTRA({MAX_EXTRA}), .MAX_STALL({MAX_STALL_PERCENT})")
    return (f"`timescale 1ns/1ps\n"
            f"module {HARNESS}(clk, {', '.join(n for _, _, n in outer)});\n"
            f"  output reg clk;\n{decls}\n{wires}\n  initial clk = 1'b0;\n"
            f"  always #{CLOCK_PERIOD_NS // 2} clk = ~clk;\n"
            f"  {toplevel} top (\n    {top_conns}\n  );\n"
            f"  dypipe_dram #(\n{params}\n  ) dram (\n    {dram_conns}\n  );\n"
            f"endmodule\n")
