"""The ``dypipe`` command line: one subcommand per job."""

import argparse
import json
import os
import pathlib
import subprocess
import sys

from .config import PRESETS, get_config, with_overrides

__all__ = ["main"]


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _config(args):
    """The chosen preset with the ``--set FIELD=VALUE`` overrides applied."""
    config = with_overrides(get_config(args.config), args.set)
    if args.set:
        _log(f"configuration {config.name} with {', '.join(args.set)} (build {config.key})")
    return config


def cmd_verilog(args):
    from .tb import toolchain
    from .tb.runner import generate_verilog, TOPLEVEL
    config = _config(args)
    out = pathlib.Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    generate_verilog(config, out, backend="amaranth", log=_log)
    _log(f"wrote {out}: top module {TOPLEVEL}, self-contained; its memory side is the port "
         f"dram__* (docs/architecture.md, 'DRAM and the memory port')")
    if args.lint:
        toolchain.activate()
        cmd = toolchain.lint_command(out, [], TOPLEVEL)
        _log("$ " + " ".join(cmd))
        proc = subprocess.run(cmd)
        if proc.returncode:
            _log("verilator --lint-only rejected the Verilog")
            return proc.returncode
        _log("verilator --lint-only: clean")
    return 0


def cmd_synth(args):
    from . import synth
    synth.check_options(args.module, args.device, args.package, args.out, args.nextpnr_arg,
                        pnr=not (args.no_pnr or args.generic), pnr_jobs=args.pnr_jobs,
                        heatmap=args.heatmap)
    config = _config(args)
    if args.generic:
        return _synth_generic(args, config)
    record = synth.run(config, unit=args.module, device=args.device, package=args.package,
                       out=args.out, pnr=not args.no_pnr, timeout_minutes=args.timeout_minutes,
                       nextpnr_args=args.nextpnr_arg, pnr_jobs=args.pnr_jobs,
                       heatmap=args.heatmap, log=_log)
    what = f"the {args.module} of {config.name}" if args.module else config.name
    print(f"{what} on {record['device']} ({args.package}), yosys synth_ecp5 with the hierarchy "
          f"kept, in {record['workdir']}")
    print(synth.format_report(record))
    if record.get("estimated_paths"):
        print(synth.format_paths(record))
    print(synth.format_pnr(record))
    _synth_end(args, config, record)
    return 0 if record["routed"] or args.no_pnr else 1


def _synth_generic(args, config):
    from .generic_synth import run_generic, format_generic
    record = run_generic(config, unit=args.module, out=args.out,
                         timeout_minutes=args.timeout_minutes, log=_log)
    what = f"the {args.module} of {config.name}" if args.module else config.name
    print(f"{what}: Yosys's coarse generic synthesis (word-level cells, no device), in "
          f"{record['workdir']}")
    print(format_generic(record))
    _synth_end(args, config, record)
    return 0


def _synth_end(args, config, record):
    """The stages' wall times, and the record with the configuration to ``--json``."""
    print("wall time: " + ", ".join(f"{stage} {seconds:.0f} s"
                                    for stage, seconds in record["stages"].items())
          + f"; total {record['wall_seconds']:.0f} s")
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**record, "config_fields": config.as_dict(),
                                    "config_overrides": list(args.set or ())}, indent=2) + "\n")
        _log(f"wrote {path}")


def _mode_row(r, base):
    c = r.counters
    speedup = base.cycles / r.cycles if r.cycles else 0.0
    roof = r.meta.get("roofline_cycles")
    moved = c["dram_read_bytes"] + c["dram_write_bytes"]
    return (f"{r.mode:<9} {r.cycles:>12,} {speedup:>8.2f}x "
            f"{(f'{roof / r.cycles:.1%}' if roof else '-'):>8} {moved:>13,} {c['busy_io']:>11,} "
            f"{c['busy_pfu']:>11,} {c['busy_store']:>11,} {c['tasks']:>7,} "
            f"{r.ctrl_cycles_per_task:>9.2f}  {'yes' if r.verified else 'NO'}")


def _workloads(args, config, modes):
    """``mode -> (workload, after)`` builders for a run: ``after(workload, result)`` adds what
    the run reports beyond the table (a network's distance from its float model)."""
    from .nets import NetworkJob, is_model_path
    from .sw import model_zoo
    from .sw.workloads import build_workload
    name = args.workload
    if name in model_zoo.NETWORKS or is_model_path(name):
        if is_model_path(name) and not pathlib.Path(name).is_file():
            raise ValueError(f"no such ONNX file: {name}")
        if args.size:
            raise ValueError(f"{name} is a network; it takes no --size")
        job = NetworkJob(config, name, seed=args.seed, input=args.input)
        return job.name, {mode: (lambda mode=mode: job.workload(mode)) for mode in modes}, \
            job.compare
    if args.input:
        raise ValueError("--input is for networks (an ONNX file or one of "
                         f"{', '.join(model_zoo.NETWORKS)})")
    return name, {mode: (lambda mode=mode: build_workload(name, config, mode, seed=args.seed,
                                                            size=args.size))
                  for mode in modes}, None


def _timing(args):
    """The random memory timing ``--random-timing`` and its companions ask for, or None
    (then the runner's default: fixed latency, or the seed in DYPIPE_RANDOM_TIMING)."""
    from .tb.mem_timing import MemTiming
    if args.random_timing is None:
        if args.stall_percent is not None or args.max_extra_latency is not None:
            raise ValueError("--stall-percent and --max-extra-latency need --random-timing SEED")
        return None
    extra = {"stall_percent": args.stall_percent, "max_extra": args.max_extra_latency}
    timing = MemTiming(args.random_timing, **{k: v for k, v in extra.items() if v is not None})
    _log(timing.describe())
    return timing


def cmd_run(args):
    from .sw.workload import MODES
    from .tb.runner import run_workload
    config = _config(args)
    timing = _timing(args)
    modes = MODES if args.mode == "all" else (args.mode,)
    name, builders, compare = _workloads(args, config, modes)
    results, errors = {}, {}
    for mode in modes:
        workload = builders[mode]()
        _log(f"running {name} ({mode}) on {config.name} ...")
        r = run_workload(workload, waves=args.waves, max_cycles=args.max_cycles, log=_log,
                         keep_dir=args.keep, timing=timing)
        rate = (f" ({r.sim_cycles_per_second / 1e3:,.0f}k cycles/s with start-up)"
                if r.cycles >= 100_000 else "")
        _log(f"  {r.cycles:,} cycles, simulated in {r.wall_seconds:.1f} s{rate}")
        if compare:
            errors[mode] = compare(workload, r)
        results[mode] = r
    base = results.get("nonepipe", next(iter(results.values())))
    meta = next(iter(results.values())).meta
    shown = {k: v for k, v in meta.items() if k not in ("per_layer",)}
    print(f"{name} on {config.name}: {json.dumps(shown)}")
    if "roofline_cycles" in meta:
        what = ("the sum of its layers' rooflines" if "per_layer" in meta else
                f"max(MACs / {config.macs_per_cycle}, {meta['compulsory_bytes']:,} compulsory "
                f"DRAM bytes / {config.dram_bytes_per_cycle} per cycle)")
        print(f"roofline {meta['roofline_cycles']:,} cycles = {what}")
    print(f"{'mode':<9} {'cycles':>12} {'speedup':>9} {'of roof':>8} {'DRAM bytes':>13} "
          f"{'busy io':>11} {'busy pfu':>11} {'busy store':>11} {'tasks':>7} {'ctrl/task':>9}  "
          f"verified")
    for r in results.values():
        print(_mode_row(r, base))
    for mode, e in errors.items():
        top1 = f", top-1 {'agrees' if e['top1_agrees'] else 'DIFFERS'}" if "top1_agrees" in e \
            else ""
        print(f"{mode}: dequantized output vs the float model (onnx.reference): max abs error "
              f"{e['max_abs_error']} (largest float value {e['float_max_abs']}), relative RMS "
              f"error {e['relative_rms_error']:.2%}{top1}")
    for r in results.values():
        for line in r.mismatches:
            print(f"MISMATCH ({r.mode}): {line}")
    if args.json:
        summaries = {mode: {**r.summary(), **({"float_error": errors[mode]} if mode in errors
                                              else {})} for mode, r in results.items()}
        record = dict(summaries.get("dypipe", next(iter(summaries.values()))))
        record["modes"] = summaries
        record["config_fields"] = config.as_dict()
        record["config_overrides"] = list(args.set or ())
        pathlib.Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        _log(f"wrote {args.json}")
    return 0 if all(r.verified for r in results.values()) else 1


def cmd_bench(args):
    from . import bench
    from .sw.workload import MODES
    config = _config(args)
    chosen = {"ops": args.ops, "nets": args.nets, "dynamic": args.workloads}[args.suite]
    for option, suite in ((args.ops, "ops"), (args.nets, "nets"), (args.workloads, "dynamic")):
        if option and args.suite != suite:
            raise ValueError("--ops is for `bench ops`, --nets for `bench nets`, --workloads "
                             "for `bench dynamic`")
    only = {name.strip().lower() for name in chosen.split(",")} if chosen else None
    modes = MODES if args.mode == "all" else (args.mode,)
    out = args.out or f"bench-out/{args.suite}-{config.name}"
    _, figures = bench.main(args.suite, config, out, only=only, modes=modes, seed=args.seed,
                            jobs=args.jobs or os.cpu_count() or 1, log=_log)
    return 0 if figures["all_verified"] else 1


def cmd_sweep(args):
    from . import sweep
    from .sw.workload import MODES
    config = _config(args)
    modes = MODES if args.mode == "all" else (args.mode,)
    out = args.out or f"bench-out/sweep-{args.workload}-{config.name}"
    records = sweep.main(args.workload, config, args.set, args.set_range, out, modes=modes,
                         size=args.size, seed=args.seed, jobs=args.jobs, log=_log)
    return 0 if all(r["verified"] for r in records) else 1


def cmd_fuzz(args):
    from . import fuzz
    summary = fuzz.main(args.n, seed=args.seed, batch_size=args.batch, jobs=args.jobs or 1,
                        out=args.out, log=_log)
    if args.json:
        path = pathlib.Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
        _log(f"wrote {args.json}")
    return 1 if summary["failed_graphs"] else 0


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


def _integer(least, what):
    """An argparse type: an integer of at least ``least`` (argparse names the option)."""
    def parse(text):
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
        return value
    return parse


def _between(least, most):
    """An argparse type: an integer in ``least..most``."""
    check = _integer(least, f"an integer in {least}..{most}")

    def parse(text):
        value = check(text)
        if value > most:
            raise argparse.ArgumentTypeError(f"must be an integer in {least}..{most}, "
                                             f"not {text!r}")
        return value
    return parse


_SEED = _integer(0, "a non-negative integer")
_LIMIT = _integer(1, "a positive number of cycles")


def build_parser():
    from .sw.workload import MODES
    from .tb.mem_timing import MAX_EXTRA, MAX_STALL_PERCENT
    from .sw.workloads import WORKLOADS
    from .sw.model_zoo import NETWORKS
    from . import synth
    parser = argparse.ArgumentParser(prog="dypipe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verilog", help="write the accelerator's Verilog")
    p.add_argument("--config", default="small", choices=sorted(PRESETS))
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a configuration field of the preset (repeatable), e.g. "
                   "dram_latency=40 or sb_bytes=1M")
    p.add_argument("--lint", action="store_true", help="also run verilator --lint-only")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("synth", help="synthesize (and place and route) for an ECP5 FPGA with "
                       "Yosys and nextpnr (installed into .venv-fpga on first use)")
    p.add_argument("--config", default="small", choices=sorted(PRESETS))
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a configuration field of the preset (repeatable)")
    p.add_argument("--module", metavar="NAME", help="synthesize one unit alone: "
                   + ", ".join(synth.UNITS))
    p.add_argument("--device", default=synth.DEFAULT_DEVICE, metavar="DEVICE",
                   help=f"nextpnr-ecp5 device: {', '.join(synth.DEVICES)} "
                   f"(default {synth.DEFAULT_DEVICE})")
    p.add_argument("--package", default=synth.DEFAULT_PACKAGE,
                   help=f"device package (default {synth.DEFAULT_PACKAGE})")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--out", metavar="DIR", help="working folder, not under /tmp (default "
                   "build/synth/<config key>[-<module>])")
    p.add_argument("--no-pnr", action="store_true", help="synthesis only, no place and route")
    p.add_argument("--generic", action="store_true",
                   help="Yosys's coarse technology-independent synthesis instead (word-level "
                   "cells by unit: flip-flop bits, multipliers, adders, memories; no device), "
                   "for a configuration no ECP5 holds, such as paper")
    p.add_argument("--timeout-minutes", type=_integer(1, "a positive number of minutes"),
                   metavar="N", help="stop a stage (yosys or nextpnr) that runs longer")
    p.add_argument("--nextpnr-arg", action="append", default=[], metavar="ARG",
                   help="pass ARG to nextpnr-ecp5 after the flow's options (repeatable; write "
                   "an option's value after '=', e.g. --nextpnr-arg=--seed=2; --placer, "
                   "--router replaces the flow's static placer or router2, --seed its seeds)")
    p.add_argument("--pnr-jobs", type=_integer(1, "a positive number of attempts"), metavar="N",
                   help="place and route attempts (one per seed) at a time (default: one a "
                   "core); the first that routes is kept")
    p.add_argument("--heatmap", action="store_true",
                   help="have router2 write its congestion files (heatmap-seed<N>/ in the "
                   "working folder, about 2 MB an iteration) and report, for each attempt that "
                   "does not route, its best iteration's overuse by unit and the die's "
                   "hottest window")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("run", help="run a workload on the RTL (Verilator) and check it",
                       epilog="workloads: " + "; ".join(
                           [f"{k}: {v[1]}" for k, v in WORKLOADS.items()]
                           + [f"{n}: the paper's {n} (ONNX, from the model zoo)"
                              for n in NETWORKS] + ["FILE.onnx: your own model"]))
    p.add_argument("workload", help="a workload name, a network name or an ONNX file")
    p.add_argument("--config", default="small", choices=sorted(PRESETS))
    p.add_argument("--mode", default="dypipe", choices=(*MODES, "all"))
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a configuration field of the preset (repeatable), e.g. "
                   "dram_latency=40 or sb_bytes=1M")
    p.add_argument("--size", help="workload size, e.g. 99x70 for fc (OUTxIN)")
    p.add_argument("--seed", type=_SEED, default=0)
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--waves", action="store_true",
                   help="trace a waveform (FST with lz4, else VCD); slow, use small runs")
    p.add_argument("--max-cycles", type=_LIMIT,
                   help="stop with a timeout error after this many cycles, counted as "
                   "`cycles` is (from the first instruction; boot is not counted)")
    p.add_argument("--keep", metavar="DIR", help="keep the run directory (image, dumps, waves)"
                   " under DIR")
    p.add_argument("--input", metavar="X.npy", help="a network's input (float, the ONNX "
                   "input's shape); default: uniform in [-1, 1) from --seed")
    p.add_argument("--random-timing", type=_integer(0, "a seed (a non-negative integer)"),
                   metavar="SEED", help="random memory timing from this seed: the DRAM "
                   "model refuses requests at random and adds random latency to reads")
    p.add_argument("--stall-percent", type=_between(0, MAX_STALL_PERCENT),
                   help="with --random-timing: the share of cycles the memory refuses "
                   "requests (default 25)")
    p.add_argument("--max-extra-latency", type=_between(0, MAX_EXTRA),
                   help="with --random-timing: the most cycles added to a read's latency "
                   "(default 16)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("bench", help="run a benchmark suite on the RTL and write CSV, JSON, PNG")
    p.add_argument("suite", choices=("ops", "nets", "dynamic"),
                   help="ops: the nine operators of Table 2; nets: the paper's four networks; "
                   "dynamic: the dynamic networks (seq2seq RNN / LSTM / GRU)")
    p.add_argument("--config", default="paper", choices=sorted(PRESETS),
                   help="paper runs them as published; other presets a scaled-down twin")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a configuration field of the preset (repeatable), e.g. "
                   "dram_latency=40 or sb_bytes=1M")
    p.add_argument("--mode", default="all", choices=(*MODES, "all"))
    p.add_argument("--ops", help="comma-separated operator names (default: all nine)")
    p.add_argument("--nets", help="comma-separated network names (default: alexnet, resnet18,"
                   " googlenet, squeezenet)")
    p.add_argument("--workloads", help="comma-separated dynamic workload names (default: all, "
                   "e.g. seq2seq-lstm-256)")
    p.add_argument("--jobs", type=_integer(1, "a positive number of runs"),
                   help="simulations at a time (default: one per core); cycles do not depend "
                   "on it, the per-run simulation speeds do")
    p.add_argument("--seed", type=_SEED, default=0)
    p.add_argument("--out", metavar="DIR",
                   help="output directory (default bench-out/SUITE-CONFIG)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("sweep", help="run a workload over a grid of configurations (CSV, "
                       "JSON, PNG)")
    p.add_argument("workload", help="a workload name (see `dypipe run --help`)")
    p.add_argument("--config", default="small", choices=sorted(PRESETS))
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override a configuration field at every point (repeatable)")
    p.add_argument("--set-range", action="append", metavar="FIELD=V1,V2,...", required=True,
                   help="sweep a configuration field over these values (repeatable: the "
                   "grid is the product)")
    p.add_argument("--mode", default="all", choices=(*MODES, "all"))
    p.add_argument("--size", help="workload size, as for `dypipe run`")
    p.add_argument("--seed", type=_SEED, default=0)
    p.add_argument("--jobs", type=_integer(1, "a positive number of builds"),
                   help="builds at a time (default: one per core)")
    p.add_argument("--out", metavar="DIR",
                   help="output directory (default bench-out/sweep-WORKLOAD-CONFIG)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("fuzz", help="run random task graphs on the RTL (small) against serial "
                       "execution, under random memory timing")
    p.add_argument("-n", type=_integer(1, "a positive number of graphs"), default=1000,
                   help="graphs to run (default 1000)")
    p.add_argument("--seed", type=_SEED, default=0)
    p.add_argument("--batch", type=_integer(1, "a positive number of graphs"), default=50,
                   help="graphs per simulation run (default 50)")
    p.add_argument("--jobs", type=_integer(1, "a positive number of runs"),
                   help="runs at a time (default 1)")
    p.add_argument("--out", metavar="DIR", default="bench-out/fuzz",
                   help="where failing batches are written, to replay (default bench-out/fuzz)")
    p.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    p.set_defaults(func=cmd_fuzz)

    from .formal import PROPERTIES, MUTANTS, main as cmd_formal
    p = sub.add_parser("formal", help="prove the dispatcher's hazard rule and task ring with "
                       "SymbiYosys (bounded, or for all depths with --induction)",
                       epilog="properties: " + "; ".join(f"{k}: {v}" for k, v in
                                                         PROPERTIES.items()))
    p.add_argument("--config", default="small", choices=sorted(PRESETS))
    p.add_argument("--reduced", action="store_true", help="a task ring of 4 and buffers of a "
                   "few beats (deeper in the same time)")
    p.add_argument("--induction", action="store_true", help="prove for all depths by "
                   "k-induction (k = --depth, default 1), the invariants first")
    p.add_argument("--depth", type=_integer(1, "a positive number of cycles"),
                   help="cycles from reset to check (default 4; each more costs 4-10x)")
    p.add_argument("--properties", metavar="P1,P2,...",
                   help="comma-separated (default: all; with --mutant, hazard)")
    p.add_argument("--jobs", type=_integer(1, "a positive number of jobs"), default=1,
                   help="SymbiYosys tasks at a time (default 1)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--mutant", choices=sorted(MUTANTS), help="break the dispatcher's conflict "
                   "test on purpose; exits 0 only if a property catches it")
    p.set_defaults(func=cmd_formal)

    from .equiv import MAX_ROWS, TIMEOUT, MUTANTS as TWIN_MUTANTS, main as cmd_equiv
    p = sub.add_parser("equiv", help="prove each hand-written Verilog twin (SRAM, MAC array, "
                       "lanes) equivalent to its Amaranth description, for every parameter set "
                       "the presets use")
    p.add_argument("--presets", default=",".join(PRESETS), metavar="P1,P2",
                   help=f"comma-separated presets whose twins to prove (default: "
                   f"{','.join(PRESETS)})")
    p.add_argument("--twins", metavar="CLASS,...", help="only these components, e.g. "
                   "LaneFinish,MacArray (default: all)")
    p.add_argument("--max-rows", type=_integer(1, "a positive number of rows"),
                   default=MAX_ROWS, help=f"prove SRAM banks deeper than this with this many "
                   f"rows (rounded down to a power of two; default {MAX_ROWS})")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--timeout", type=_integer(1, "a positive number of seconds"),
                   default=TIMEOUT, help=f"seconds a check may take (default {TIMEOUT})")
    p.add_argument("--mutant", choices=sorted(TWIN_MUTANTS), help="alter a twin on purpose; "
                   "exits 0 only if it is found not equivalent")
    p.set_defaults(func=cmd_equiv)

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
