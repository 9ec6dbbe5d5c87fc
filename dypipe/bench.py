"""``dypipe bench ops``: the nine operators of the paper's Table 2 in all three modes on the RTL,
with their rooflines; a CSV, a JSON and a bar chart like the paper's Fig.8."""

import csv
import json
import math
import pathlib
import time

from .sw.ops import table2_ops
from .sw.workload import MODES

__all__ = ["bench_ops", "FIELDS", "summarize", "plot"]

#: Columns of the CSV (the JSON records have these plus the counters).
FIELDS = ("op", "kind", "mode", "cycles", "roofline_cycles", "roofline_fraction",
          "normalized_to_nonepipe", "speed_vs_static", "verified", "macs", "mac_utilization",
          "dram_read_bytes", "dram_write_bytes", "dram_bytes", "compulsory_bytes",
          "dram_bytes_over_compulsory", "wall_seconds", "sim_cycles_per_second")


def _record(config, op, wl, r):
    c = r.counters
    moved = c["dram_read_bytes"] + c["dram_write_bytes"]
    macs = wl.meta.get("macs", 0)
    return {
        "op": op.name, "kind": op.kind, "mode": r.mode, "cycles": r.cycles,
        "roofline_cycles": wl.meta["roofline_cycles"],
        "roofline_fraction": round(wl.meta["roofline_cycles"] / r.cycles, 4),
        "verified": r.verified, "macs": macs,
        "mac_utilization": round(macs / (r.cycles * config.macs_per_cycle), 4),
        "dram_read_bytes": c["dram_read_bytes"], "dram_write_bytes": c["dram_write_bytes"],
        "dram_bytes": moved, "compulsory_bytes": wl.meta["compulsory_bytes"],
        "dram_bytes_over_compulsory": round(moved / wl.meta["compulsory_bytes"], 4),
        "wall_seconds": round(r.wall_seconds, 3),
        "sim_cycles_per_second": round(r.sim_cycles_per_second),
        "counters": dict(c), "mismatches": r.mismatches, "layer": wl.meta,
    }


def bench_ops(config, *, modes=MODES, only=None, seed=0, log=print):
    """Run the operators (``only``: names to keep) in ``modes``; returns the records."""
    from .tb.runner import run_workload
    ops = [op for op in table2_ops(config) if not only or op.name.lower() in only]
    if only and len(ops) != len(only):
        known = ", ".join(op.name for op in table2_ops(config))
        raise ValueError(f"unknown operator in {sorted(only)}; Table 2 has {known}")
    records, total, k = [], len(ops) * len(modes), 0
    for op in ops:
        for mode in modes:
            k += 1
            wl = op.build(config, mode, seed)
            log(f"[{k}/{total}] {op.name} {mode} ...")
            r = run_workload(wl, log=log)
            rec = _record(config, op, wl, r)
            records.append(rec)
            log(f"[{k}/{total}] {op.name} {mode}: {r.cycles:,} cycles, "
                f"{rec['roofline_fraction']:.1%} of the roofline ({rec['roofline_cycles']:,}), "
                f"{'verified' if r.verified else 'MISMATCH'}, simulated in "
                f"{r.wall_seconds:.1f} s")
    by = {(r["op"], r["mode"]): r for r in records}
    for rec in records:
        base = by.get((rec["op"], "nonepipe"))
        static = by.get((rec["op"], "static"))
        rec["normalized_to_nonepipe"] = round(rec["cycles"] / base["cycles"], 4) if base else None
        rec["speed_vs_static"] = round(static["cycles"] / rec["cycles"], 4) if static else None
    return records


def _geomean(values):
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def summarize(records, wall_seconds):
    """The figures the issue asks for, as a dict and as printable lines."""
    dyn = [r for r in records if r["mode"] == "dypipe" and r["speed_vs_static"]]
    cycles = sum(r["cycles"] for r in records)
    sim_wall = sum(r["wall_seconds"] for r in records)
    figures = {
        "geomean_dypipe_vs_static": round(_geomean(r["speed_vs_static"] for r in dyn), 4),
        "geomean_static_vs_nonepipe": round(_geomean(
            1 / r["normalized_to_nonepipe"] for r in records
            if r["mode"] == "static" and r["normalized_to_nonepipe"]), 4),
        "all_verified": all(r["verified"] for r in records),
        "simulated_cycles": cycles,
        "simulation_wall_seconds": round(sim_wall, 1),
        "sim_cycles_per_second": round(cycles / sim_wall) if sim_wall else 0,
        "benchmark_wall_seconds": round(wall_seconds, 1),
    }
    lines = [f"{'op':<6} {'mode':<9} {'cycles':>11} {'roofline':>10} {'of roof':>8} "
             f"{'MAC util':>8} {'DRAM/compulsory':>15} {'vs static':>9}  verified"]
    for r in records:
        vs = f"{r['speed_vs_static']:.3f}" if r["speed_vs_static"] else "-"
        lines.append(f"{r['op']:<6} {r['mode']:<9} {r['cycles']:>11,} "
                     f"{r['roofline_cycles']:>10,} {r['roofline_fraction']:>8.1%} "
                     f"{r['mac_utilization']:>8.1%} {r['dram_bytes_over_compulsory']:>15.3f} "
                     f"{vs:>9}  {'yes' if r['verified'] else 'NO'}")
    lines += [
        f"geomean DyPipe / static speed: {figures['geomean_dypipe_vs_static']:.4f}",
        f"geomean static / NonePipe speed: {figures['geomean_static_vs_nonepipe']:.4f}",
        f"simulated {cycles:,} cycles in {sim_wall:.0f} s of simulation "
        f"({figures['sim_cycles_per_second']:,} cycles/s incl. start-up); "
        f"benchmark wall time {wall_seconds:.0f} s",
    ]
    return figures, lines


def plot(records, path, config_name):
    """A bar chart like the paper's Fig.8: cycles of each mode normalized to NonePipe."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ops = list(dict.fromkeys(r["op"] for r in records))
    modes = [m for m in MODES if any(r["mode"] == m for r in records)]
    by = {(r["op"], r["mode"]): r for r in records}
    fig, ax = plt.subplots(figsize=(10, 3.6))
    width = 0.8 / len(modes)
    names = {"nonepipe": "NonePipe", "static": "Static", "dypipe": "DyPipe"}
    for i, mode in enumerate(modes):
        values = [by[op, mode]["normalized_to_nonepipe"] or 0 if (op, mode) in by else 0
                  for op in ops]
        ax.bar([k + (i - (len(modes) - 1) / 2) * width for k in range(len(ops))], values,
               width, label=names.get(mode, mode))
    ax.set_xticks(range(len(ops)), ops)
    ax.set_ylabel("execution time\n(normalized to NonePipe)")
    ax.set_title(f"Table 2 operators on the RTL ({config_name} configuration)")
    ax.set_ylim(0, 1.2)
    ax.legend(ncol=len(modes), loc="upper right", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(records, figures, out_dir, config_name):
    """Write ``ops.csv``, ``ops.json`` and ``ops.png`` into ``out_dir``; returns the paths."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "ops.csv", "json": out / "ops.json", "png": out / "ops.png"}
    with paths["csv"].open("w", newline="") as f:
        w = csv.DictWriter(f, FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(records)
    paths["json"].write_text(json.dumps({"config": config_name, "summary": figures,
                                         "records": records}, indent=2) + "\n")
    plot(records, paths["png"], config_name)
    return paths


def main(config, out_dir, *, only=None, modes=MODES, seed=0, log=print):
    started = time.monotonic()
    records = bench_ops(config, modes=modes, only=only, seed=seed, log=log)
    figures, lines = summarize(records, time.monotonic() - started)
    for line in lines:
        print(line)
    paths = write(records, figures, out_dir, config.name)
    log("wrote " + ", ".join(str(p) for p in paths.values()))
    return records, figures
