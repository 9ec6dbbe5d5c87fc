"""``make bench-sim REV=<commit>``: simulation speed, and with ``--builds`` the time of a build
from scratch, of this checkout against another commit, side by side on this machine.

The other commit is checked out as a git worktree under ``build/simspeed-<rev>`` with a
virtual environment of its own (made by its Makefile, reused on later calls, as are its
simulator builds). Each run is a long static FC (``dypipe run fc --mode static``) on
``small`` (1000 x 1000) and ``paper`` (4096 x 4096); the two checkouts run in turn, ``--runs``
times each, and the best simulated cycles per second of each (simulation wall time with the
simulator's start-up, as ``dypipe run`` prints it) give the ratio.

A build from scratch (``--builds``) is Verilog generation and the Verilator build of the
harness, in a new empty build folder (``DYPIPE_SIM_BUILD``) each time, so nothing is reused,
not even the objects every build compiles alike (``dypipe.tb.objcache``); the checkouts
alternate and the shortest wall time of each gives the ratio.

    python -m dypipe.simspeed --against 2a2caf4 [--runs 3] [--config small,paper] [--builds]
"""

import argparse
import json
import pathlib
import re
import os
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNS = {"small": "1000x1000", "paper": "4096x4096"}
_SIMULATED = re.compile(r"([\d,]+) cycles, simulated in ([\d.]+) s")


def _checkout(rev, log):
    """The worktree of ``rev`` with its venv installed; returns its root."""
    short = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.strip()
    tree = ROOT / "build" / f"simspeed-{short}"
    if not tree.exists():
        log(f"checking out {short} in {tree} ...")
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), short], cwd=ROOT,
                       check=True, capture_output=True)
    log(f"installing {short}'s virtual environment (once) ...")
    subprocess.run(["make", "-C", str(tree), "venv"], check=True, capture_output=True)
    return tree


def _run(tree, config, size):
    """One run in checkout ``tree``: (cycles, simulated cycles per second)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "run.json"
        proc = subprocess.run([str(tree / ".venv" / "bin" / "dypipe"), "run", "fc", "--config",
                               config, "--size", size, "--mode", "static", "--json", str(out)],
                              cwd=tree, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{tree}: dypipe run failed:\n{proc.stderr[-2000:]}")
        record = json.loads(out.read_text())
    cycles = record["cycles"]
    if record.get("wall_seconds"):
        return cycles, cycles / record["wall_seconds"]
    match = _SIMULATED.search(proc.stderr + proc.stdout)
    return cycles, cycles / float(match.group(2))


def compare(rev, configs=("small", "paper"), runs=3, log=print):
    """Best simulated cycles/s of this checkout and of ``rev`` per configuration."""
    other = _checkout(rev, log)
    results = {}
    for config in configs:
        best, cycles = {"this": 0.0, rev: 0.0}, {}
        log(f"{config}: fc {RUNS[config]} static, {runs} runs each (the first builds) ...")
        _run(ROOT, config, RUNS[config])         # builds before timing
        _run(other, config, RUNS[config])
        for _ in range(runs):
            for name, tree in (("this", ROOT), (rev, other)):
                cycles[name], speed = _run(tree, config, RUNS[config])
                best[name] = max(best[name], speed)
        results[config] = {"cycles": cycles, "cycles_per_second": best,
                           "ratio": best["this"] / best[rev]}
        log(f"{config}: this checkout {best['this'] / 1e3:,.0f}k cycles/s, {rev} "
            f"{best[rev] / 1e3:,.0f}k cycles/s: {results[config]['ratio']:.2f}x")
    return results


_BUILD = ("import sys; from dypipe.config import PRESETS; from dypipe.tb import runner; "
          "runner.build(PRESETS[sys.argv[1]])")


def _build(tree, config):
    """Wall seconds of one build of ``config`` from scratch in checkout ``tree``."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        proc = subprocess.run([str(tree / ".venv" / "bin" / "python"), "-c", _BUILD, config],
                              cwd=tree, capture_output=True, text=True,
                              env={**os.environ, "DYPIPE_SIM_BUILD": tmp})
        seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{tree}: the build failed:\n{proc.stderr[-2000:]}")
    return seconds


def compare_builds(rev, configs=("small", "paper"), runs=3, log=print):
    """Shortest build from scratch of this checkout and of ``rev`` per configuration."""
    other = _checkout(rev, log)
    results = {}
    for config in configs:
        best = {"this": float("inf"), rev: float("inf")}
        log(f"{config}: builds from scratch, {runs} each, alternating ...")
        for _ in range(runs):
            for name, tree in (("this", ROOT), (rev, other)):
                seconds = _build(tree, config)
                log(f"  {name}: {seconds:.1f} s")
                best[name] = min(best[name], seconds)
        results[config] = {"build_seconds": {k: round(v, 1) for k, v in best.items()},
                           "ratio": best[rev] / best["this"]}
        log(f"{config}: this checkout builds in {best['this']:.1f} s, {rev} in "
            f"{best[rev]:.1f} s: {results[config]['ratio']:.2f}x faster")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dypipe.simspeed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, metavar="REV", help="a commit to compare")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--config", default="small,paper",
                        help="comma-separated: small, paper")
    parser.add_argument("--builds", action="store_true",
                        help="time builds from scratch instead of simulation")
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.config.split(",") if c.strip()]
    unknown = [c for c in configs if c not in RUNS]
    if unknown or args.runs < 1:
        parser.error(f"--config takes {', '.join(RUNS)}; --runs a positive number")
    try:
        results = (compare_builds if args.builds else compare)(
            args.against, configs, args.runs,
            log=lambda m: print(m, file=sys.stderr, flush=True))
    except (subprocess.CalledProcessError, RuntimeError) as e:
        print(f"simspeed: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
