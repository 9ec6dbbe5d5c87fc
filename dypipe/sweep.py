"""``dypipe sweep``: one workload over a grid of configurations.

``--set-range FIELD=V1,V2,...`` (repeatable: the grid is the product) varies fields of the
preset, on top of any ``--set FIELD=VALUE``. Every point builds its own simulator (in
parallel, ``--jobs`` at a time; a point built before is reused), then runs the workload in
each mode. Writes ``sweep.csv``, ``sweep.json`` (``{"config", "grid", "records": [...]}``,
a record per point and mode with the fields' values, cycles, roofline and verification) and
``sweep.png`` (cycles and the fraction of the roofline against the first swept field, a line
per mode and per value of the other fields).
"""

import concurrent.futures
import csv
import itertools
import json
import os
import pathlib
import time

from .bench import FRACTION_DIGITS
from .config import with_overrides
from .sw.workload import MODES

__all__ = ["parse_ranges", "grid", "sweep", "main"]

FIELDS = ("point", "mode", "cycles", "roofline_cycles", "roofline_fraction", "verified",
          "dram_bytes", "tasks", "ctrl_cycles_per_task", "wall_seconds")


def parse_ranges(texts):
    """``["FIELD=V1,V2", ...]`` -> ``[(field, ["V1", "V2"]), ...]`` (values checked later,
    with the configuration)."""
    ranges = []
    for text in texts or ():
        field, sep, values = text.partition("=")
        values = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not field.strip() or not values:
            raise ValueError(f"--set-range {text!r}: expected FIELD=V1,V2,...")
        if any(field.strip() == f for f, _ in ranges):
            raise ValueError(f"--set-range: {field.strip()} is swept twice")
        ranges.append((field.strip(), values))
    if not ranges:
        raise ValueError("dypipe sweep needs at least one --set-range FIELD=V1,V2,...")
    return ranges


def grid(config, settings, ranges):
    """The configurations of the grid: ``[(point, config)]`` with ``point`` the swept fields'
    values; every one validated before anything is built."""
    points = []
    for values in itertools.product(*(vals for _, vals in ranges)):
        point = {field: value for (field, _), value in zip(ranges, values)}
        cfg = with_overrides(config, list(settings or ()) + [f"{f}={v}"
                                                            for f, v in point.items()])
        points.append(({f: getattr(cfg, f) for f in point}, cfg))
    return points


def _build(config):
    from .tb.runner import build
    started = time.monotonic()
    build(config)
    return time.monotonic() - started


def sweep(workload, config, settings, ranges, *, modes=MODES, size=None, seed=0, jobs=None,
          log=print):
    """Build every point (``jobs`` at a time), then run ``workload`` on each in ``modes``;
    returns the records."""
    from .sw.workloads import build_workload
    from .tb.runner import run_workload
    points = grid(config, settings, ranges)
    jobs = max(1, jobs or min(len(points), os.cpu_count() or 1))
    log(f"sweep {workload} on {config.name}: {len(points)} configurations x {len(modes)} "
        f"modes; building {jobs} at a time")
    with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
        futures = {pool.submit(_build, cfg): point for point, cfg in points}
        for k, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            log(f"[build {k}/{len(points)}] {_label(futures[future])}: "
                f"{future.result():.0f} s")
    records, total = [], len(points) * len(modes)
    for point, cfg in points:
        for mode in modes:
            wl = build_workload(workload, cfg, mode, seed=seed, size=size)
            r = run_workload(wl)
            c = r.counters
            rec = {"point": _label(point), **point, "mode": mode, "cycles": r.cycles,
                   "roofline_cycles": wl.meta.get("roofline_cycles"),
                   "roofline_fraction": (
                       round(wl.meta["roofline_cycles"] / r.cycles, FRACTION_DIGITS)
                       if wl.meta.get("roofline_cycles") else None),
                   "verified": r.verified,
                   "dram_bytes": c["dram_read_bytes"] + c["dram_write_bytes"],
                   "tasks": c["tasks"], "ctrl_cycles_per_task": r.ctrl_cycles_per_task,
                   "wall_seconds": round(r.wall_seconds, 3), "counters": dict(c),
                   "config_fields": cfg.as_dict()}
            records.append(rec)
            roof = rec["roofline_fraction"]
            roof = "" if roof is None else f", {roof:.1%} of the roofline"
            log(f"[{len(records)}/{total}] {rec['point']} {mode}: {r.cycles:,} cycles{roof}, "
                f"{'verified' if r.verified else 'MISMATCH'}")
    return records


def _label(point):
    return " ".join(f"{f}={v}" for f, v in point.items())


def plot(records, ranges, path, title):
    """Cycles and fraction of the roofline against the first swept field."""
    from .bench import _pyplot
    plt = _pyplot()
    field = ranges[0][0]
    others = [f for f, _ in ranges[1:]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    groups = {}
    for r in records:
        key = (r["mode"], tuple(r[f] for f in others))
        groups.setdefault(key, []).append(r)
    for (mode, rest), rows in groups.items():
        rows.sort(key=lambda r: r[field])
        label = mode + "".join(f", {f}={v}" for f, v in zip(others, rest))
        xs = [r[field] for r in rows]
        axes[0].plot(xs, [r["cycles"] for r in rows], marker="o", label=label)
        if all(r["roofline_fraction"] is not None for r in rows):
            axes[1].plot(xs, [r["roofline_fraction"] for r in rows], marker="o", label=label)
    values = sorted({r[field] for r in records})
    for ax, what in zip(axes, ("cycles", "fraction of the roofline")):
        ax.set_xlabel(field)
        ax.set_ylabel(what)
        ax.set_xscale("log", base=2)
        ax.set_xticks(values, [str(v) for v in values])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[1].set_ylim(0, 1.05)
    axes[1].legend(fontsize="x-small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(workload, config, settings, range_texts, out_dir, *, modes=MODES, size=None, seed=0,
         jobs=None, log=print):
    """Run the sweep, print a table, write the CSV, JSON and chart; returns the records."""
    started = time.monotonic()
    ranges = parse_ranges(range_texts)
    records = sweep(workload, config, settings, ranges, modes=modes, size=size, seed=seed,
                    jobs=jobs, log=log)
    fields = [f for f, _ in ranges]
    print(f"{'point':<32} {'mode':<9} {'cycles':>12} {'of roof':>8}  verified")
    for r in records:
        roof = "-" if r["roofline_fraction"] is None else f"{r['roofline_fraction']:.1%}"
        print(f"{r['point']:<32} {r['mode']:<9} {r['cycles']:>12,} {roof:>8}  "
              f"{'yes' if r['verified'] else 'NO'}")
    wall = time.monotonic() - started
    print(f"sweep wall time {wall:.0f} s")
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "sweep.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fields + list(FIELDS), extrasaction="ignore")
        w.writeheader()
        w.writerows(records)
    (out / "sweep.json").write_text(json.dumps({
        "config": config.name, "workload": workload, "settings": list(settings or ()),
        "grid": {f: vals for f, vals in ranges}, "wall_seconds": round(wall, 1),
        "records": records}, indent=2) + "\n")
    plot(records, ranges, out / "sweep.png", f"{workload} on {config.name}")
    log(f"wrote {out / 'sweep.csv'}, {out / 'sweep.json'}, {out / 'sweep.png'}")
    return records
