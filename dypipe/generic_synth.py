"""``dypipe synth --generic``: Yosys's technology-independent synthesis, for a configuration that
fits no FPGA of the flow (``paper``), counted by unit.

The design goes to Yosys as RTLIL (:func:`amaranth.back.rtlil.convert`), not as Verilog: on
``paper`` Yosys's Verilog frontend and ``proc`` took 52 minutes before the WebAssembly build
crashed, while the RTLIL is through ``proc`` in seconds (``docs/fpga.md``). The script is the
coarse half of Yosys's generic ``synth`` (up to its ``fine`` label: ``proc``, ``opt``,
``wreduce``, ``alumacc``, ``share``, ``memory -nomap``) and ``stat -width``, with the memories
unpacked so that ``stat`` counts their bits. The fine half (``memory_map``, ``techmap`` to
gates, ``abc``) ran the WebAssembly Yosys out of memory on ``paper`` after two minutes, so the
counts are word-level cells: flip-flop bits, multiplier and multiply-accumulate cells (one
``$macc`` may hold several products), adders and comparators (``$alu``) and their bits,
multiplexer bits, memories and their bits, and the other cells.
"""

import json
import pathlib
import re
import time

from .synth import SYNTH_BUILD, FPGA_VENV, TOOLS, _group, build_unit, by_unit, check_options, \
    run_yosys, unit_label
from .tb.runner import TOPLEVEL
from .tools import ensure_tools

__all__ = ["KINDS", "parse_generic_stat", "run_generic", "format_generic"]

#: What the report counts, in its order: ``kind -> column heading``.
KINDS = {"ff_bits": "FF bits", "multipliers": "mul/macc", "alus": "$alu", "alu_bits": "$alu bits",
         "mux_bits": "mux bits", "memories": "mems", "memory_bits": "mem bits",
         "other": "other"}

_TYPE = re.compile(r"^\$([a-z_]+?(?:_v2)?)(?:_\d+)*$")
_WIDTH = re.compile(r"_(\d+)")


def _kind(cell_type):
    """``(kind, width)`` of a ``stat -width`` cell type such as ``$sdffe_32`` (a ``$bmux_2_7``
    is 2 bits wide, selected by 7)."""
    match = _TYPE.match(cell_type)
    if not match:
        return "other", 0
    name = match.group(1)
    widths = _WIDTH.findall(cell_type[len(name) + 1:])
    width = int(widths[0]) if widths else 0
    if "dff" in name or name in ("dlatch", "adlatch", "sr"):
        return "ff_bits", width
    if name in ("mul", "macc", "macc_v2"):
        return "multipliers", 0
    if name == "alu":
        return "alus", width
    if name in ("mux", "pmux", "bmux"):
        return "mux_bits", width
    return "other", 0


def parse_generic_stat(text):
    """Per-module counts (:data:`KINDS`) from ``stat -width -json`` of the coarse design."""
    try:
        modules = json.loads(text)["modules"]
    except (ValueError, KeyError) as exc:
        raise ValueError(f"not the output of `stat -json`: {exc}") from None
    out = {}
    for name, stats in modules.items():
        counts = dict.fromkeys(KINDS, 0)
        counts["memories"] = stats.get("num_memories", 0)
        counts["memory_bits"] = stats.get("num_memory_bits", 0)
        for cell_type, n in stats.get("num_cells_by_type", {}).items():
            if cell_type.startswith("$mem"):      # the unpacked memories' ports
                continue
            kind, width = _kind(cell_type)
            if kind in ("ff_bits", "mux_bits"):
                counts[kind] += n * width
            elif kind == "alus":
                counts["alus"] += n
                counts["alu_bits"] += n * width
            elif kind == "multipliers":
                counts[kind] += n
            elif not cell_type.startswith("$"):   # a submodule instance
                continue
            else:
                counts["other"] += n
        out[name.lstrip("\\")] = counts
    return out


def _script(top):
    return (f"read_rtlil {top}.il\nsynth -top {top} -run begin:fine\nmemory_unpack\n"
            f"tee -q -o stat.json stat -width -json\ntee -q -o stat.txt stat -width\n")


def run_generic(config, *, unit=None, out=None, timeout_minutes=None, log=print):
    """Coarse synthesis of ``config``'s accelerator (or its unit ``unit``); returns the record
    ``--json`` writes: ``units`` and ``modules`` with :data:`KINDS` counts, ``stages``,
    ``wall_seconds``."""
    from amaranth.back import rtlil
    from .rtl.top import Top
    check_options(unit, out=out)
    started = time.monotonic()
    workdir = pathlib.Path(out) if out else (
        SYNTH_BUILD / f"{config.key}{'-' + unit if unit else ''}-generic")
    workdir.mkdir(parents=True, exist_ok=True)
    bindir = ensure_tools(FPGA_VENV, TOOLS, log)
    top = f"dypipe_{unit}" if unit else TOPLEVEL
    log(f"generating RTLIL for the {unit or 'accelerator'} of {config.name} ...")
    design = build_unit(unit, config, "amaranth") if unit else Top(config, backend="amaranth")
    (workdir / f"{top}.il").write_text(rtlil.convert(design, name=top, emit_src=False))
    stages = {"rtlil": time.monotonic() - started}
    stages["synth"] = run_yosys(_script(top), "generic.ys", workdir, bindir,
                                timeout_minutes * 60 if timeout_minutes else None, log)
    stats = parse_generic_stat((workdir / "stat.json").read_text())
    modules, units = by_unit([{"name": name, "unit": _group(name, top, unit), **counts}
                              for name, counts in stats.items()], KINDS)
    total = {kind: sum(u[kind] for u in units.values()) for kind in KINDS}
    return {"generic": True, "config": config.name, "config_key": config.key, "module": unit,
            "top": top, "workdir": str(workdir), **total, "units": units, "modules": modules,
            "stages": {k: round(v, 1) for k, v in stages.items()},
            "wall_seconds": round(time.monotonic() - started, 1)}


def format_generic(record):
    """The table ``dypipe synth --generic`` prints: one row per unit, then the total."""
    head = f"{'unit':<40}" + "".join(f"{h:>11}" for h in KINDS.values())
    lines = [head, "-" * len(head)]
    for unit, counts in record["units"].items():
        lines.append(f"{unit_label(unit)[:40]:<40}" + "".join(f"{counts[k]:>11,}" for k in KINDS))
    lines.append("-" * len(head))
    lines.append(f"{'total (' + record['top'] + ')':<40}"
                 + "".join(f"{record[k]:>11,}" for k in KINDS))
    return "\n".join(lines)
