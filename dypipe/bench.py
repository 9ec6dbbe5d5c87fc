"""``dypipe bench ops``, ``dypipe bench nets`` and ``dypipe bench dynamic``: Table 2's nine
operators, the paper's four networks, or the dynamic networks, in all three modes on the RTL,
with their rooflines; a CSV, a JSON and charts like the paper's Fig.8 (operators), Fig.9 and
Fig.11 (networks), Fig.10 and Fig.11's dynamic rows (dynamic networks).

How Fig.11's breakdown is measured: the counter ``datapath_idle`` counts the cycles in which no
DMA engine moved data and the PFU computed nothing, so that only the control unit, the module
sequencers' scalar code and context loads, and the dispatcher were at work: that is CF & CTX
(control flow and context maintenance). In every other cycle some unit computed or moved data:
COM & IO.
"""

import concurrent.futures
import csv
import json
import math
import pathlib
import time

from .sw.workload import MODES

__all__ = ["bench_ops", "bench_nets", "bench_dynamic", "dynamic_workloads", "OP_FIELDS",
           "NET_FIELDS", "DYNAMIC_FIELDS", "summarize", "plot", "plot_breakdown", "main"]

NAMES = {"nonepipe": "NonePipe", "static": "Static", "dypipe": "DyPipe"}

#: Columns of the CSVs (the JSON records have these plus the counters and more).
_COMMON = ("mode", "cycles", "roofline_cycles", "roofline_fraction", "normalized_to_nonepipe",
           "speed_vs_static", "verified", "macs", "mac_utilization", "dram_read_bytes",
           "dram_write_bytes", "dram_bytes", "compulsory_bytes", "dram_bytes_over_compulsory",
           "cf_ctx_cycles", "cf_ctx_fraction", "tasks", "ctrl_cycles_per_task", "wall_seconds",
           "sim_cycles_per_second")
OP_FIELDS = ("op", "kind") + _COMMON
NET_FIELDS = ("net",) + _COMMON + ("layers", "program_words", "overlays", "max_abs_error",
                                   "relative_rms_error", "top1_agrees")
DYNAMIC_FIELDS = ("workload",) + _COMMON + ("steps", "padded_work_ratio", "taken", "leaves",
                                            "depth")


#: Digits kept of the fractions a record holds (of the roofline, MAC utilization, CF & CTX).
#: The tables print them to a tenth of a percent; with 4 digits a value such as 0.932539 was
#: kept as 0.9325 and printed 93.2%, not 93.3%.
FRACTION_DIGITS = 6


def _record(config, wl, r):
    """What every benchmark records of a run."""
    c, meta = r.counters, wl.meta
    moved = c["dram_read_bytes"] + c["dram_write_bytes"]
    macs = meta.get("macs", 0)
    return {
        "mode": r.mode, "cycles": r.cycles, "roofline_cycles": meta["roofline_cycles"],
        "roofline_fraction": round(meta["roofline_cycles"] / r.cycles, FRACTION_DIGITS),
        "verified": r.verified, "macs": macs,
        "mac_utilization": round(macs / (r.cycles * config.macs_per_cycle), FRACTION_DIGITS),
        "dram_read_bytes": c["dram_read_bytes"], "dram_write_bytes": c["dram_write_bytes"],
        "dram_bytes": moved, "compulsory_bytes": meta["compulsory_bytes"],
        "dram_bytes_over_compulsory": round(moved / meta["compulsory_bytes"], 4),
        "cf_ctx_cycles": c["datapath_idle"],
        "cf_ctx_fraction": round(c["datapath_idle"] / r.cycles, FRACTION_DIGITS),
        "tasks": c["tasks"], "ctrl_cycles_per_task": r.ctrl_cycles_per_task,
        "wall_seconds": round(r.wall_seconds, 3),
        "sim_cycles_per_second": round(r.sim_cycles_per_second),
        "counters": dict(c), "mismatches": r.mismatches,
    }


def _select(items, only, what):
    """The items (by ``.lower()`` name) that ``only`` keeps; an unknown name is an error."""
    chosen = [i for i in items if not only or i.lower() in only]
    if only and len(chosen) != len(only):
        raise ValueError(f"unknown {what} in {sorted(only)}; there are {', '.join(items)}")
    return chosen


# -- one run of a suite ------------------------------------------------------------------------
# Each takes (config, name, mode, seed) and returns (record, run result); module-level so that
# worker processes can run them.

def _run_op(config, name, mode, seed):
    from .sw.ops import table2_ops
    from .tb.runner import run_workload
    op = next(o for o in table2_ops(config) if o.name == name)
    wl = op.build(config, mode, seed)
    r = run_workload(wl)
    return {"op": op.name, "kind": op.kind, **_record(config, wl, r), "layer": wl.meta}, r


_NETWORK_JOBS = {}


def _run_net(config, name, mode, seed):
    from .nets import NetworkJob
    from .tb.runner import run_workload
    key = (config.key, name, seed)
    if key not in _NETWORK_JOBS:        # import and quantize once per process and network
        _NETWORK_JOBS.clear()
        _NETWORK_JOBS[key] = NetworkJob(config, name, seed=seed)
    job = _NETWORK_JOBS[key]
    wl = job.workload(mode)
    r = run_workload(wl)
    error = job.compare(wl, r)
    return {"net": name, **_record(config, wl, r), "layers": wl.meta["layers"],
            "program_words": len(wl.program.words) + sum(
                len(o.program.words) for o in wl.program.overlays),
            "overlays": len(wl.program.overlays),
            **{k: error.get(k) for k in ("max_abs_error", "relative_rms_error",
                                         "top1_agrees")},
            "float_error": error, "weight_bytes": wl.meta["weight_bytes"],
            "quantization": wl.meta.get("quantization"),
            "per_layer": wl.meta["per_layer"]}, r


def _run_dynamic(config, name, mode, seed):
    from .tb.runner import run_workload
    wl = dynamic_workloads(config)[name](mode, seed)
    r = run_workload(wl)
    return {"workload": name, **_record(config, wl, r), "layer": wl.meta,
            **{k: wl.meta[k] for k in ("steps", "padded_work_ratio", "lengths", "taken",
                                       "leaves", "depth", "tree") if k in wl.meta}}, r


def _run_suite(run_one, config, names, modes, seed, jobs, log):
    """Every (name, mode) through ``run_one``, ``jobs`` at a time (worker processes; each run
    is one single-threaded simulation), with a progress line as each ends. The simulator is
    built first, once. Returns the records in (name, mode) order."""
    from .tb.runner import build
    build(config, log=log)
    runs = [(name, mode) for name in names for mode in modes]
    records = {}

    def done(k, name, mode, rec, r):
        records[k] = rec
        log(f"[{len(records)}/{len(runs)}] {name} {mode}: {r.cycles:,} cycles, "
            f"{rec['roofline_fraction']:.1%} of the roofline ({rec['roofline_cycles']:,}), "
            f"{'verified' if r.verified else 'MISMATCH'}, simulated in {r.wall_seconds:.1f} s")

    if jobs == 1:
        for k, (name, mode) in enumerate(runs):
            log(f"[{k + 1}/{len(runs)}] {name} {mode} ...")
            done(k, name, mode, *run_one(config, name, mode, seed))
    else:
        log(f"{len(runs)} runs, {jobs} at a time ...")
        with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
            futures = {pool.submit(run_one, config, name, mode, seed): (k, name, mode)
                       for k, (name, mode) in enumerate(runs)}
            for future in concurrent.futures.as_completed(futures):
                k, name, mode = futures[future]
                done(k, name, mode, *future.result())
    return [records[k] for k in range(len(runs))]


def bench_ops(config, *, modes=MODES, only=None, seed=0, jobs=1, log=print):
    """Table 2's operators (``only``: names to keep) in ``modes``, ``jobs`` runs at a time;
    returns the records."""
    from .sw.ops import table2_ops
    names = _select([op.name for op in table2_ops(config)], only, "operator")
    return _compare(_run_suite(_run_op, config, names, modes, seed, jobs, log), "op")


def bench_nets(config, *, modes=MODES, only=None, seed=0, jobs=1, log=print):
    """The paper's four networks (``only``: names to keep) in ``modes``, ``jobs`` runs at a
    time; returns the records, each with its per-layer list and its distance from the float
    model."""
    from .sw.model_zoo import NETWORKS
    names = _select(list(NETWORKS), only, "network")
    return _compare(_run_suite(_run_net, config, names, modes, seed, jobs, log), "net")


def dynamic_workloads(config):
    """name -> builder(mode, seed) of the dynamic workloads: on ``paper`` at the paper's sizes
    (seq2seq at hidden 256 and 128, Tree-LSTM at hidden 150), on other presets scaled down
    (hidden 8 and 16, 12); Tree-LSTM over trees of 19 and 128 leaves; the early-exit CNN with
    its exit taken and not."""
    from .sw.early_exit import random_early_exit
    from .sw.seq2seq import random_seq2seq
    from .sw.treelstm import random_treelstm
    sizes = (256, 128) if config.name == "paper" else (16, 8)
    out = {}
    for hidden in sizes:
        for cell in ("rnn", "lstm", "gru"):
            name = f"seq2seq-{cell}-{hidden}"
            out[name] = (lambda mode, seed, cell=cell, hidden=hidden, name=name:
                         random_seq2seq(config, cell, sentences=16, hidden=hidden, seed=seed,
                                        mode=mode, name=name))
    for leaves in (19, 128):
        out[f"treelstm-{leaves}"] = (lambda mode, seed, leaves=leaves:
                                     random_treelstm(config, leaves, seed=seed, mode=mode))
    for take in (True, False):
        out[f"early-exit-{'taken' if take else 'continue'}"] = (
            lambda mode, seed, take=take: random_early_exit(config, take=take, seed=seed,
                                                            mode=mode))
    return out


def bench_dynamic(config, *, modes=MODES, only=None, seed=0, jobs=1, log=print):
    """The dynamic networks (``only``: names to keep) in ``modes``, ``jobs`` runs at a time;
    returns the records, each with its run-time lengths."""
    names = _select(list(dynamic_workloads(config)), only, "workload")
    return _compare(_run_suite(_run_dynamic, config, names, modes, seed, jobs, log),
                    "workload")


def _compare(records, key):
    """Add each record's cycles relative to NonePipe and its speed relative to static."""
    by = {(r[key], r["mode"]): r for r in records}
    for rec in records:
        base, static = by.get((rec[key], "nonepipe")), by.get((rec[key], "static"))
        rec["normalized_to_nonepipe"] = round(rec["cycles"] / base["cycles"], 4) if base else None
        rec["speed_vs_static"] = round(static["cycles"] / rec["cycles"], 4) if static else None
    return records


def _geomean(values):
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def summarize(records, key, wall_seconds):
    """The figures the issues ask for, as a dict and as printable lines."""
    dyn = [r for r in records if r["mode"] == "dypipe"]
    cycles = sum(r["cycles"] for r in records)
    sim_wall = sum(r["wall_seconds"] for r in records)
    figures = {
        "geomean_dypipe_vs_static": round(_geomean(
            r["speed_vs_static"] for r in dyn if r["speed_vs_static"]), 4),
        "geomean_static_vs_nonepipe": round(_geomean(
            1 / r["normalized_to_nonepipe"] for r in records
            if r["mode"] == "static" and r["normalized_to_nonepipe"]), 4),
        "all_verified": all(r["verified"] for r in records),
        "dypipe_roofline_fraction": {r[key]: r["roofline_fraction"] for r in dyn},
        "dypipe_cf_ctx_fraction": {r[key]: r["cf_ctx_fraction"] for r in dyn},
        "simulated_cycles": cycles,
        "simulation_wall_seconds": round(sim_wall, 1),
        "sim_cycles_per_second": round(cycles / sim_wall) if sim_wall else 0,
        "benchmark_wall_seconds": round(wall_seconds, 1),
    }
    width = max(len(str(r[key])) for r in records) if records else 4
    lines = [f"{key:<{width}} {'mode':<9} {'cycles':>11} {'roofline':>10} {'of roof':>8} "
             f"{'MAC util':>8} {'DRAM/comp.':>10} {'CF&CTX':>7} {'ctrl/task':>9} "
             f"{'vs static':>9}  verified"]
    for r in records:
        vs = f"{r['speed_vs_static']:.3f}" if r["speed_vs_static"] else "-"
        lines.append(f"{r[key]:<{width}} {r['mode']:<9} {r['cycles']:>11,} "
                     f"{r['roofline_cycles']:>10,} {r['roofline_fraction']:>8.1%} "
                     f"{r['mac_utilization']:>8.1%} {r['dram_bytes_over_compulsory']:>10.3f} "
                     f"{r['cf_ctx_fraction']:>7.1%} {r['ctrl_cycles_per_task']:>9.2f} "
                     f"{vs:>9}  {'yes' if r['verified'] else 'NO'}")
    lines += [
        f"geomean DyPipe / static speed: {figures['geomean_dypipe_vs_static']:.4f}",
        f"geomean static / NonePipe speed: {figures['geomean_static_vs_nonepipe']:.4f}",
        f"simulated {cycles:,} cycles in {sim_wall:.0f} s of simulation "
        f"({figures['sim_cycles_per_second']:,} cycles/s incl. start-up); "
        f"benchmark wall time {wall_seconds:.0f} s",
    ]
    return figures, lines


def dynamic_figures(records):
    """The dynamic suite's figures by group: seq2seq's geomean DyPipe / static speed at each
    hidden width, Tree-LSTM's DyPipe against the per-tree static program and NonePipe, and the
    exit's DyPipe / static speed taken and not."""
    dyn = {r["workload"]: r for r in records if r["mode"] == "dypipe"}
    base = {r["workload"]: r for r in records if r["mode"] == "nonepipe"}
    figures, lines = {}, []
    widths = sorted({name.rsplit("-", 1)[1] for name in dyn if name.startswith("seq2seq-")},
                    key=int, reverse=True)
    for width in widths:
        group = [r for name, r in dyn.items()
                 if name.startswith("seq2seq-") and name.endswith(f"-{width}")]
        speeds = [r["speed_vs_static"] for r in group if r["speed_vs_static"]]
        if speeds:
            bound = _geomean(r["padded_work_ratio"] for r in group)
            figures[f"seq2seq_{width}_geomean_dypipe_vs_static"] = round(_geomean(speeds), 4)
            lines.append(f"seq2seq at hidden {width}: geomean DyPipe / static speed "
                         f"{_geomean(speeds):.4f} (padded / real steps {bound:.4f})")
    for name, r in dyn.items():
        if r["speed_vs_static"] is None:        # static did not run
            continue
        if name.startswith("treelstm-"):
            vs_none = base[name]["cycles"] / r["cycles"] if name in base else None
            figures[f"{name}_dypipe_vs_static"] = r["speed_vs_static"]
            figures[f"{name}_dypipe_vs_nonepipe"] = round(vs_none, 4) if vs_none else None
            lines.append(f"{name}: DyPipe / per-tree static speed {r['speed_vs_static']}, "
                         f"DyPipe / NonePipe {vs_none:.3f}" if vs_none else
                         f"{name}: DyPipe / per-tree static speed {r['speed_vs_static']}")
        if name.startswith("early-exit-"):
            figures[f"{name}_dypipe_vs_static"] = r["speed_vs_static"]
            lines.append(f"{name}: DyPipe / static speed {r['speed_vs_static']} "
                         f"({r['cycles']:,} cycles)")
    cf = max((r["cf_ctx_fraction"] for r in dyn.values()), default=0)
    figures["max_dypipe_cf_ctx_fraction"] = cf
    lines.append(f"largest CF & CTX share of a DyPipe run: {cf:.1%}")
    return figures, lines


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot(records, key, path, title):
    """A bar chart like the paper's Fig.8 and Fig.9: each mode's cycles normalized to
    NonePipe."""
    plt = _pyplot()
    items = list(dict.fromkeys(r[key] for r in records))
    modes = [m for m in MODES if any(r["mode"] == m for r in records)]
    by = {(r[key], r["mode"]): r for r in records}
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(items) + 1), 3.6))
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        values = [(by[item, mode]["normalized_to_nonepipe"] or 0) if (item, mode) in by else 0
                  for item in items]
        ax.bar([k + (i - (len(modes) - 1) / 2) * width for k in range(len(items))], values,
               width, label=NAMES.get(mode, mode))
    ax.set_xticks(range(len(items)), items)
    ax.set_ylabel("execution time\n(normalized to NonePipe)")
    ax.set_title(title)
    ax.set_ylim(0, 1.2)
    ax.legend(ncol=len(modes), loc="upper right", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_breakdown(records, key, path, title):
    """A stacked bar chart like the paper's Fig.11: each mode's cycles split into COM & IO and
    CF & CTX, as a share of the DyPipe run's cycles."""
    plt = _pyplot()
    items = list(dict.fromkeys(r[key] for r in records))
    modes = [m for m in ("static", "dypipe") if any(r["mode"] == m for r in records)]
    by = {(r[key], r["mode"]): r for r in records}
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(items) + 1), 3.6))
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        xs, com, ctl = [], [], []
        for k, item in enumerate(items):
            rec, ref = by.get((item, mode)), by.get((item, "dypipe"))
            if rec and ref:
                xs.append(k + (i - (len(modes) - 1) / 2) * width)
                ctl.append(rec["cf_ctx_cycles"] / ref["cycles"])
                com.append((rec["cycles"] - rec["cf_ctx_cycles"]) / ref["cycles"])
        ax.bar(xs, com, width, label=f"{NAMES[mode]}: COM & IO", alpha=0.85 if i else 0.55)
        ax.bar(xs, ctl, width, bottom=com, label=f"{NAMES[mode]}: CF & CTX", hatch="//",
               alpha=0.85 if i else 0.55)
        for x, a, b in zip(xs, com, ctl):       # CF & CTX is often too thin to see
            ax.annotate(f"{b / (a + b):.1%}", (x, a + b), ha="center", va="bottom",
                        fontsize="x-small", xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(items)), items)
    ax.set_ylabel("execution time\n(normalized to DyPipe)")
    ax.set_title(title)
    ax.set_ylim(0, 1.25)
    ax.legend(ncol=2, loc="lower right", fontsize="x-small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


#: suite -> (record key, CSV columns, {file: (chart, title)}).
SUITES = {
    "ops": ("op", OP_FIELDS, {"ops.png": (plot, "Table 2 operators on the RTL")}),
    "nets": ("net", NET_FIELDS, {"fig9.png": (plot, "Fig.9: networks on the RTL"),
                                 "fig11.png": (plot_breakdown, "Fig.11: COM & IO vs CF & CTX")}),
    "dynamic": ("workload", DYNAMIC_FIELDS, {
        "fig10.png": (plot, "Fig.10: dynamic networks on the RTL"),
        "fig11-dynamic.png": (plot_breakdown, "Fig.11 (dynamic): COM & IO vs CF & CTX")}),
}


def write(suite, records, figures, out_dir, config):
    """Write ``<suite>.csv``, ``<suite>.json`` and the charts into ``out_dir``; returns the
    paths."""
    key, fields, charts = SUITES[suite]
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / f"{suite}.csv", "json": out / f"{suite}.json"}
    with paths["csv"].open("w", newline="") as f:
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(records)
    paths["json"].write_text(json.dumps({"config": config.name,
                                         "config_fields": config.as_dict(),
                                         "summary": figures, "records": records},
                                        indent=2) + "\n")
    for name, (chart, title) in charts.items():
        paths[name] = out / name
        chart(records, key, paths[name], f"{title} ({config.name})")
    return paths


def main(suite, config, out_dir, *, only=None, modes=MODES, seed=0, jobs=1, log=print):
    """Run ``suite`` ("ops", "nets" or "dynamic"), ``jobs`` runs at a time, print its table
    and figures, write its files."""
    started = time.monotonic()
    run = {"ops": bench_ops, "nets": bench_nets, "dynamic": bench_dynamic}[suite]
    records = run(config, modes=modes, only=only, seed=seed, jobs=jobs, log=log)
    figures, lines = summarize(records, SUITES[suite][0], time.monotonic() - started)
    if suite == "dynamic":
        more, more_lines = dynamic_figures(records)
        figures.update(more)
        lines = lines[:-3] + more_lines + lines[-3:]
    for line in lines:
        print(line)
    paths = write(suite, records, figures, out_dir, config)
    log("wrote " + ", ".join(str(p) for p in paths.values()))
    return records, figures
