"""The ``dypipe`` command line: one subcommand per job."""

import argparse
import json
import pathlib
import subprocess
import sys

from .config import PRESETS, get_config

__all__ = ["main"]


def _log(message):
    print(message, file=sys.stderr, flush=True)


def cmd_verilog(args):
    from .tb import toolchain
    from .tb.runner import generate_verilog, RTL_DIR, VERILOG_LIBRARY, TOPLEVEL
    config = get_config(args.config)
    out = pathlib.Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    generate_verilog(config, out, log=_log)
    library = [RTL_DIR / "verilog" / name for name in VERILOG_LIBRARY]
    _log(f"wrote {out} (top module {TOPLEVEL}; also needs {', '.join(p.name for p in library)}"
         f" from {library[0].parent})")
    if args.lint:
        toolchain.activate()
        cmd = toolchain.lint_command(out, library, TOPLEVEL)
        _log("$ " + " ".join(cmd))
        proc = subprocess.run(cmd)
        if proc.returncode:
            _log("verilator --lint-only rejected the Verilog")
            return proc.returncode
        _log("verilator --lint-only: clean")
    return 0


def _mode_row(r, base):
    c = r.counters
    speedup = base.cycles / r.cycles if r.cycles else 0.0
    roof = r.meta.get("roofline_cycles")
    moved = c["dram_read_bytes"] + c["dram_write_bytes"]
    return (f"{r.mode:<9} {r.cycles:>12,} {speedup:>8.2f}x "
            f"{(f'{roof / r.cycles:.1%}' if roof else '-'):>8} {moved:>13,} {c['busy_io']:>11,} "
            f"{c['busy_pfu']:>11,} {c['busy_store']:>11,}  {'yes' if r.verified else 'NO'}")


def cmd_run(args):
    from .sw.workload import MODES
    from .sw.workloads import build_workload
    from .tb.runner import run_workload
    config = get_config(args.config)
    modes = MODES if args.mode == "all" else (args.mode,)
    results = {}
    for mode in modes:
        workload = build_workload(args.workload, config, mode, seed=args.seed, size=args.size)
        _log(f"running {args.workload} ({mode}) on {config.name} ...")
        r = run_workload(workload, waves=args.waves, max_cycles=args.max_cycles, log=_log,
                         keep_dir=args.keep)
        rate = (f" ({r.sim_cycles_per_second / 1e3:,.0f}k cycles/s with start-up)"
                if r.cycles >= 100_000 else "")
        _log(f"  {r.cycles:,} cycles, simulated in {r.wall_seconds:.1f} s{rate}")
        results[mode] = r
    base = results.get("nonepipe", next(iter(results.values())))
    print(f"{args.workload} on {config.name}: {json.dumps(next(iter(results.values())).meta)}")
    meta = next(iter(results.values())).meta
    if "roofline_cycles" in meta:
        print(f"roofline {meta['roofline_cycles']:,} cycles = max(MACs / {config.macs_per_cycle}, "
              f"{meta['compulsory_bytes']:,} compulsory DRAM bytes / "
              f"{config.dram_bytes_per_cycle} per cycle)")
    print(f"{'mode':<9} {'cycles':>12} {'speedup':>9} {'of roof':>8} {'DRAM bytes':>13} "
          f"{'busy io':>11} {'busy pfu':>11} {'busy store':>11}  verified")
    for r in results.values():
        print(_mode_row(r, base))
    for r in results.values():
        for line in r.mismatches:
            print(f"MISMATCH ({r.mode}): {line}")
    if args.json:
        main_result = results.get("dypipe", next(iter(results.values())))
        record = main_result.summary()
        record["modes"] = {mode: r.summary() for mode, r in results.items()}
        pathlib.Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        _log(f"wrote {args.json}")
    return 0 if all(r.verified for r in results.values()) else 1


def cmd_bench(args):
    from . import bench
    from .sw.workload import MODES
    config = get_config(args.config)
    only = {name.strip().lower() for name in args.ops.split(",")} if args.ops else None
    modes = MODES if args.mode == "all" else (args.mode,)
    out = args.out or f"bench-out/ops-{config.name}"
    _, figures = bench.main(config, out, only=only, modes=modes, seed=args.seed, log=_log)
    return 0 if figures["all_verified"] else 1


def cmd_asm(args):
    from .sw.asm import assemble
    path = pathlib.Path(args.source)
    program = assemble(path.read_text(), str(path))
    for pc, word in enumerate(program.words):
        print(f"{pc:5d}: {word:08x}")
    return 0


def cmd_disasm(args):
    from .sw.asm import disassemble
    words = [int(tok.split(":")[-1], 16) for tok in pathlib.Path(args.hexfile).read_text().split()
             if not tok.endswith(":")]
    print(disassemble(words), end="")
    return 0


def build_parser():
    from .sw.workload import MODES
    from .sw.workloads import WORKLOADS
    parser = argparse.ArgumentParser(prog="dypipe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verilog", help="write the accelerator's Verilog")
    p.add_argument("--config", default="small", choices=sorted(PRESETS))
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--lint", action="store_true", help="also run verilator --lint-only")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("run", help="run a workload on the RTL (Verilator) and check it",
                       epilog="workloads: " + "; ".join(f"{k}: {v[1]}"
                                                        for k, v in WORKLOADS.items()))
    p.add_argument("workload", choices=sorted(WORKLOADS))
    p.add_argument("--config", default="small", choices=sorted(PRESETS))
    p.add_argument("--mode", default="dypipe", choices=(*MODES, "all"))
    p.add_argument("--size", help="workload size, e.g. 99x70 for fc (OUTxIN)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--waves", action="store_true",
                   help="trace a waveform (FST with lz4, else VCD); slow, use small runs")
    p.add_argument("--max-cycles", type=int, help="stop with a timeout error after this many")
    p.add_argument("--keep", metavar="DIR", help="keep the run directory (image, dumps, waves)"
                   " under DIR")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("bench", help="run a benchmark suite on the RTL and write CSV, JSON, PNG")
    p.add_argument("suite", choices=("ops",), help="ops: the nine operators of Table 2")
    p.add_argument("--config", default="paper", choices=sorted(PRESETS),
                   help="paper runs Table 2 as printed; other presets a scaled-down twin")
    p.add_argument("--mode", default="all", choices=(*MODES, "all"))
    p.add_argument("--ops", help="comma-separated operator names (default: all nine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="output directory (default bench-out/ops-CONFIG)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("asm", help="assemble a file and print the words")
    p.add_argument("source")
    p.set_defaults(func=cmd_asm)
    p = sub.add_parser("disasm", help="disassemble hex words (as printed by `dypipe asm`)")
    p.add_argument("hexfile")
    p.set_defaults(func=cmd_disasm)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"dypipe: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
