"""The simulation harness: a Verilog module around the accelerator's top that makes the clock
itself, so that the cocotb testbench (:mod:`.cocotb_top`) only starts the machine and awaits
``done``, ``error`` or the cycle limit; nothing crosses into Python on a clock edge. Kept
light: the testbench imports it inside the simulator."""

import pathlib
import re

__all__ = ["HARNESS", "CLOCK_PERIOD_NS", "harness_verilog"]

HARNESS = "dypipe_harness"
#: The clock the harness makes (the testbench's timers count in it).
CLOCK_PERIOD_NS = 10

_PORT = re.compile(r"^\s*(input|output)\s*(\[[^\]]+\])?\s*(\w+);", re.M)


def harness_verilog(top, toplevel):
    """A harness around module ``toplevel`` of the generated Verilog file ``top``: the same
    ports but the clock, which it makes itself (:data:`CLOCK_PERIOD_NS`, ``clk`` as an
    output). Simulated with Verilator ``--timing``."""
    text = pathlib.Path(top).read_text()
    body = text[text.index(f"module {toplevel}("):]
    body = body[:body.index("endmodule")]
    ports = [(d, w or "", n) for d, w, n in _PORT.findall(body) if n != "clk"]
    decls = "\n".join(f"  {d} {w} {n};" for d, w, n in ports)
    conns = ",\n    ".join(f".{n}({n})" for _, _, n in ports)
    return (f"`timescale 1ns/1ps\nmodule {HARNESS}(clk, {', '.join(n for _, _, n in ports)});\n"
            f"  output reg clk;\n{decls}\n  initial clk = 1'b0;\n"
            f"  always #{CLOCK_PERIOD_NS // 2} clk = ~clk;\n"
            f"  {toplevel} top (\n    .clk(clk),\n    {conns}\n  );\nendmodule\n")
