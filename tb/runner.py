"""Run a compiled workload on the RTL through Verilator and cocotb.

:func:`generate_verilog` writes the accelerator's Verilog for a configuration (cached by a hash
of the hardware sources and the configuration), :func:`run_workload` builds it (Verilator skips
an unchanged build), loads the program and data into the DRAM model by ``$fread``, runs until
``done``, ``error`` or a cycle limit, reads the counters and outputs back and checks them
against the golden model.
"""

import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

from ..rtl.backends import check_backend
from ..sw.asm import disassemble_word
from ..sw.isa import Err, Unit
from . import toolchain
from .harness import DRAM_PREFIX, DUMP_PORTS, HARNESS, harness_verilog
from .dram_image import read_dump, write_image
from .mem_timing import choose_timing

__all__ = ["MachineError", "SimulationTimeout", "RunResult", "generate_verilog",
           "run_workload", "rtl_sources", "SIM_BUILD", "TOPLEVEL"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
RTL_DIR = ROOT / "rtl"
SIM_BUILD = pathlib.Path(os.environ.get("DYPIPE_SIM_BUILD", ROOT / "sim_build"))
TOPLEVEL = "dypipe_top"
#: Objects every build compiles alike (the Verilator run-time), shared by all configurations.
OBJECT_CACHE = SIM_BUILD / "objcache"
#: The hand-written Verilog the simulation build adds: the fast twins of the SRAM banks, the MAC
#: array and the lane arithmetic (``backend="verilog"``), and the DRAM model.
VERILOG_LIBRARY = ("dypipe_sram.v", "dypipe_dram.v", "dypipe_dram.cpp",
                   "dypipe_mac_array.v", "dypipe_lanes.v")


class MachineError(RuntimeError):
    """The accelerator stopped with an error code.

    Members
    -------
    code : Err, unit : Unit, pc : int, addr : int
    """

    def __init__(self, code, unit, pc, addr, program=None):
        self.code, self.unit, self.pc, self.addr = code, unit, pc, addr
        where = f"{unit.name} module" if unit != Unit.CTRL else "control unit"
        insn = ""
        word = program.word_at(pc) if program is not None else None
        if word is not None:
            insn = f" ({disassemble_word(word, pc)})"
        elif program is not None and program.window is not None and pc >= program.window:
            insn = " (in an overlay window)"
        super().__init__(f"{code.name} in the {where} at pc {pc}{insn}, address {addr:#x}")


class SimulationTimeout(RuntimeError):
    """The run did not finish within its cycle limit."""


@dataclasses.dataclass
class RunResult:
    workload: str
    config: str
    mode: str
    cycles: int
    verified: bool
    mismatches: list
    counters: dict
    outputs: dict
    wall_seconds: float
    meta: dict

    @property
    def sim_cycles_per_second(self):
        return self.counters["cycles"] / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def ctrl_cycles_per_task(self):
        """The control unit's active cycles per committed task: its cost of issuing one
        (every control-unit instruction takes one active cycle, so this is also its
        instructions per task)."""
        tasks = self.counters["tasks"]
        return round(self.counters["ctrl_active"] / tasks, 2) if tasks else 0.0

    def summary(self):
        """The JSON-ready record of the run; ``counters`` also groups the modules' busy cycles
        as ``"busy": {"io", "pfu", "store"}``."""
        busy = {unit: self.counters[f"busy_{unit}"] for unit in ("io", "pfu", "store")}
        return {"workload": self.workload, "config": self.config, "mode": self.mode,
                "cycles": self.cycles, "verified": self.verified,
                "ctrl_cycles_per_task": self.ctrl_cycles_per_task,
                "mismatches": self.mismatches, "counters": {**self.counters, "busy": busy},
                "wall_seconds": round(self.wall_seconds, 3),
                "sim_cycles_per_second": round(self.sim_cycles_per_second), **self.meta}


_RELATIVE_IMPORT = re.compile(r"^\s*from (\.+[\w.]*) import ([\w, ]+)", re.M)


def _imported(module):
    """The project modules that ``module`` (a dotted name) imports relatively: ``from .x
    import y`` and ``from ..sw import y`` give the module or its submodule ``y``."""
    spec = importlib.util.find_spec(module)
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    found = []
    for source, names in _RELATIVE_IMPORT.findall(pathlib.Path(spec.origin).read_text()):
        base = importlib.util.resolve_name(source, package)
        for name in [base] + [f"{base}.{n.strip()}" for n in names.split(",")]:
            try:
                sub = importlib.util.find_spec(name)
            except ModuleNotFoundError:
                continue
            if sub is not None and sub.origin and sub.origin.endswith(".py"):
                found.append(name)
    return found


def rtl_sources():
    """Every file the generated Verilog depends on: the RTL, and the modules of the shared
    layer (``sw/isa.py``, ``sw/pwl.py``, ``dypipe/config.py`` ...) it imports, followed
    through their own imports."""
    files = sorted(RTL_DIR.rglob("*.py")) + sorted(RTL_DIR.rglob("*.v")) \
        + sorted(RTL_DIR.rglob("*.cpp"))
    seen, todo = set(), [f"dypipe.rtl.{f.stem}" for f in files
                         if f.suffix == ".py" and f.stem != "__init__"]
    shared = set()
    while todo:
        for name in _imported(todo.pop()):
            if name in seen:
                continue
            seen.add(name)
            todo.append(name)
            if not name.startswith("dypipe.rtl"):
                shared.add(pathlib.Path(importlib.util.find_spec(name).origin))
    return files + sorted(shared)


def _hardware_hash(config, backend):
    h = hashlib.sha256(json.dumps([config.as_dict(), backend], sort_keys=True).encode())
    for path in rtl_sources():
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@contextlib.contextmanager
def _locked(directory):
    """Serialize generation and builds of one configuration across processes (pytest-xdist)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def generate_verilog(config, path=None, *, backend="verilog", log=None, on_generate=None):
    """Write the accelerator's Verilog for ``config`` to ``path`` (default: the configuration's
    build directory), regenerating only when the hardware sources, the configuration or the
    backend changed. ``backend="verilog"`` instantiates the Verilog twins of
    :data:`VERILOG_LIBRARY` (for simulation); ``"amaranth"`` gives one self-contained file
    described by Amaranth alone (for synthesis), ``"ecp5"`` the same with the ECP5's
    multiplier blocks (:mod:`dypipe.rtl.backends`). ``on_generate`` is called first when the
    Verilog must be generated. Returns the path."""
    check_backend(backend)
    target = pathlib.Path(path) if path else SIM_BUILD / config.key / f"{TOPLEVEL}-{backend}.v"
    stamp = target.with_suffix(".sha256")
    digest = _hardware_hash(config, backend)
    if target.exists() and stamp.exists() and stamp.read_text() == digest:
        return target
    if on_generate:
        on_generate()
    if log:
        log(f"generating Verilog for the {config.name} configuration ...")
    started = time.monotonic()
    # In a fresh interpreter: this one may hold RTL modules imported before their files
    # changed, and the stamp must describe the Verilog actually written.
    proc = subprocess.run([sys.executable, "-c", "import sys; from dypipe.tb.runner import "
                           "_convert; sys.stdout.write(_convert(*sys.argv[1:]))",
                           json.dumps(config.as_dict()), backend], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"Verilog generation failed:\n{proc.stderr}")
    text = proc.stdout
    target.parent.mkdir(parents=True, exist_ok=True)
    toolchain.write_if_changed(target, text)
    stamp.write_text(digest)
    if log:
        log(f"  {len(text) / 1e6:.1f} MB of Verilog in {time.monotonic() - started:.1f} s")
    return target


def _convert(config_json, backend):
    """The Verilog text of the top for a configuration given as JSON."""
    from amaranth.back import verilog
    from ..config import Config
    from ..rtl.top import Top
    return verilog.convert(Top(Config(**json.loads(config_json)), backend=backend),
                           name=TOPLEVEL, emit_src=False)


def _harness_ports(config):
    """Names of the harness's ports (what the testbench touches), as two lists: those it
    writes and those it only reads. The top's, from its signature, but the memory port, and
    the DRAM model's dump port."""
    from amaranth.lib.wiring import In
    from ..rtl.top import Top
    written, read = ["rst", *DUMP_PORTS], ["clk"]
    top = Top(config)
    for path, member, _ in top.signature.flatten(top):
        name = "__".join(str(p) for p in path)
        if not name.startswith(DRAM_PREFIX):
            (written if member.flow == In else read).append(name)
    top._MustUse__silence = True     # built only for its signature
    return written, read


def build(config, *, waves=False, log=None):
    """Generate and Verilate the accelerator for ``config``; returns the toolchain handle."""
    from ..rtl.top import mem_tag_bits
    build_dir = SIM_BUILD / config.key
    library = [RTL_DIR / "verilog" / name for name in VERILOG_LIBRARY]
    warming = []

    def warm():         # a new design: compile the run-time library on the other core meanwhile
        warming.append(toolchain.warm_object_cache(
            OBJECT_CACHE, cpp=[p for p in library if p.suffix == ".cpp"], waves=waves,
            timing=True, log=log))

    with _locked(build_dir):
        top = generate_verilog(config, log=log, on_generate=warm)
        harness = build_dir / f"{HARNESS}.v"
        toolchain.write_if_changed(harness, harness_verilog(top, TOPLEVEL, config,
                                                            mem_tag_bits()))
        sources = [harness, top] + library
        written, read = _harness_ports(config)
        started = time.monotonic()
        handle = toolchain.build(sources, HARNESS, build_dir / "verilator-harness",
                                 public=written, public_read=read, waves=waves, timing=True,
                                 object_cache=OBJECT_CACHE,
                                 before_compile=warming[0] if warming else None)
        if log and time.monotonic() - started > 1:
            log(f"  Verilator build in {time.monotonic() - started:.1f} s")
    return handle


@contextlib.contextmanager
def _run_dir(keep_dir):
    """A scratch directory for one run: deleted afterwards unless it was made under
    ``keep_dir``."""
    if keep_dir:
        pathlib.Path(keep_dir).mkdir(parents=True, exist_ok=True)
        yield pathlib.Path(tempfile.mkdtemp(prefix="dypipe-run-", dir=keep_dir))
        return
    with tempfile.TemporaryDirectory(prefix="dypipe-run-") as tmp:
        yield pathlib.Path(tmp)


def _default_limit(workload):
    # Generous: every DRAM beat of the image twice over (and of the traffic a workload says
    # it streams on top, such as weights read again at every step), plus the MACs, plus slack.
    beats = workload.image.used_beats + workload.meta.get("streamed_bytes", 0) // (
        workload.config.dram_bytes_per_cycle)
    macs = workload.meta.get("macs", 0)
    return 4 * beats + 4 * macs // workload.config.macs_per_cycle + 200_000


def run_workload(workload, *, waves=False, max_cycles=None, log=None, keep_dir=None,
                 timing=None):
    """Run ``workload`` on the RTL, with the memory's fixed latency, or under random memory
    ``timing`` (a :class:`~dypipe.tb.mem_timing.MemTiming`; by default the one the environment
    variable ``DYPIPE_RANDOM_TIMING`` names; ``False`` for the fixed latency whatever it says).

    Returns a :class:`RunResult` (``verified`` says whether every output matched the golden
    model; ``mismatches`` names the first differing elements). Raises :class:`MachineError`
    when the machine stops on an error and :class:`SimulationTimeout` when it does not finish
    within ``max_cycles``."""
    cfg = workload.config
    if max_cycles is not None and int(max_cycles) < 1:
        raise ValueError(f"max_cycles must be a positive number of cycles, not {max_cycles}")
    timing = choose_timing(timing)
    handle = build(cfg, waves=waves, log=log)
    max_cycles = max_cycles or _default_limit(workload)
    with _run_dir(keep_dir) as tmp:
        image = tmp / "dram.bin"
        write_image(image, workload.image.beats(workload.program.words), cfg.beat_bits)
        dumps = [[name, workload.image.regions[name].beat,
                  workload.image.regions[name].beat + workload.image.regions[name].beats - 1]
                 for name in workload.expected]
        spec = {"prog_len": len(workload.program.words), "max_cycles": max_cycles,
                "dumps": dumps, "dump_file": str(tmp / "dump.hex"),
                "result": str(tmp / "result.json")}
        (tmp / "spec.json").write_text(json.dumps(spec))
        started = time.monotonic()
        plusargs = [f"+DRAM_INIT={image}", f"+DRAM_DUMP={spec['dump_file']}"]
        toolchain.run(handle, "dypipe.tb.cocotb_top", tmp,
                      plusargs=plusargs + (timing.plusargs() if timing else []),
                      extra_env={"DYPIPE_SPEC": str(tmp / "spec.json")}, waves=waves)
        wall = time.monotonic() - started
        result = json.loads((tmp / "result.json").read_text())
        if waves and log:
            for wave in sorted(tmp.rglob("*.fst")) + sorted(tmp.rglob("*.vcd")):
                log(f"  waveform: {wave}")
        if result["status"] == "error":
            e = result["error"]
            raise MachineError(Err(e["code"]), Unit(e["unit"]), e["pc"], e["addr"],
                               workload.program)
        if result["status"] == "timeout":
            raise SimulationTimeout(f"{workload.name} did not finish within {max_cycles} "
                                    f"cycles")
        outputs = {}
        for name, path in result["dumps"].items():
            outputs[name] = workload.image.extract(name, read_dump(path, cfg.beat_bits))
    mismatches = workload.check(outputs)
    counters = result["counters"]
    return RunResult(workload=workload.name, config=cfg.name, mode=workload.mode,
                     cycles=counters["cycles"], verified=not mismatches, mismatches=mismatches,
                     counters=counters, outputs=outputs, wall_seconds=wall,
                     meta={**workload.meta, **({"mem_timing": dataclasses.asdict(timing)}
                                              if timing else {})})


def stderr_log(message):
    print(message, file=sys.stderr, flush=True)
