"""Random task graphs on the RTL against serial execution (``dypipe fuzz``, ``make fuzz``).

A task graph is a random list of tasks (DMA loads, DMA stores, matrix-vector products) over
small windows of DRAM and of each bank, so that they overlap often, each declaring its exact
footprint. It runs on the RTL with DyPipe's dispatcher, which may reorder whatever does not
conflict; a Python model executes the same tasks one after another. After each graph, final
tasks copy every bank window out; its DRAM window and those copies must equal the model's.

Graphs are issued by SAVEPC, or as SPAWNs: each task through a template of its own, whose
values are split at random between the template and the four operand registers; template
numbers wrap around, so templates are defined again while tasks spawned from them are still
waiting or running.

To keep the simulator's start-up off the count, one run holds a batch of graphs one after
another (each with a DRAM window of its own; the banks carry over, in the model too), under
random memory timing of its own. The ``small`` configuration.
"""

import concurrent.futures
import dataclasses
import json
import pathlib
import time

import numpy as np

from .config import PRESETS
from .sw.fc import dma_params
from .sw.golden import write_back
from .sw.image import DramImage
from .sw.isa import Act, Buf, Space, Unit, DMA_PARAMS, MVM_PARAMS, SPAWN_OPERANDS
from .sw.program import ARG, ProgramBuilder, Reg, module_function
from .sw.workload import Workload

__all__ = ["random_tasks", "build", "serial", "run_batch", "main", "CFG"]

CFG = PRESETS["small"]
R, C, V = CFG.pe_rows, CFG.pe_cols, CFG.beat_elems
BPR = {Buf.NBIN: C // V, Buf.SB: R * C // V, Buf.NBOUT: R // V}   # beats per row
WINDOW = {buf: 6 * BPR[buf] for buf in Buf}
DRAM_BEATS = 48
SPACE = {Buf.NBIN: Space.NBIN, Buf.SB: Space.SB, Buf.NBOUT: Space.NBOUT}
MAX_TASKS = 14


def _dma_fn(unit, buf):
    def body(f, p):
        (f.dload if unit == Unit.IO else f.dstore)(buf, p.dram_addr)
    kind = "load" if unit == Unit.IO else "store"
    return module_function(unit, *DMA_PARAMS, name=f"{kind}_{buf.name.lower()}")(body)


LOAD = {buf: _dma_fn(Unit.IO, buf) for buf in Buf}
STORE = {buf: _dma_fn(Unit.STORE, buf) for buf in Buf}


@module_function(Unit.PFU, *MVM_PARAMS, name="mvm_bias")
def MVM_BIAS(f, p):
    f.mvm(p.dst, bias=True)


@module_function(Unit.PFU, *MVM_PARAMS, name="mvm_plain")
def MVM_PLAIN(f, p):
    f.mvm(p.dst, bias=False, act=Act.RELU)


# -- random tasks -------------------------------------------------------------------------------

def dma_task(pick, choose, kind):
    """A load or store of 1..6 beats somewhere in the windows."""
    buf = choose(list(Buf))
    beats = pick(1, 6)
    return (kind, buf, pick(0, WINDOW[buf] - beats), pick(0, DRAM_BEATS - beats), beats)


def mvm_task(pick, choose):
    """An MVM of 1..2 blocks over 1..2 chunks, anywhere in the windows, bias or not."""
    k, m = pick(1, 2), pick(1, 2)
    return ("mvm", pick(0, 6 - m), pick(0, 6 - k), pick(0, 6 - m * k), k, m, choose([False, True]))


def random_tasks(pick, choose, n):
    """``n`` random tasks; ``pick(lo, hi)`` draws an integer in lo..hi, ``choose(seq)`` an
    element."""
    tasks = []
    for _ in range(n):
        kind = choose(["load", "store", "mvm"])
        tasks.append(mvm_task(pick, choose) if kind == "mvm" else dma_task(pick, choose, kind))
    return tasks


def numpy_drawers(rng):
    """``pick`` and ``choose`` for :func:`random_tasks` from a numpy generator."""
    return (lambda lo, hi: int(rng.integers(lo, hi + 1)),
            lambda seq: seq[int(rng.integers(len(seq)))])


# -- building and running -----------------------------------------------------------------------

class _Spawner:
    """Issues a task as a SPAWN of a template of its own (``pb.task``'s arguments): each
    value is the template's, or an operand register plus the template's rest, at random."""

    def __init__(self, pb, rng):
        self.pb, self.rng = pb, rng

    def _split(self, value, operands):
        if self.rng.random() < 0.3:
            return value
        i = int(self.rng.integers(SPAWN_OPERANDS))
        if i not in operands:
            operands[i] = int(self.rng.integers(-40, 40))
        return ARG[i] + (value - operands[i])

    def task(self, fn, *, reads, writes, **params):
        operands = {}
        params = {name: self._split(v, operands) for name, v in params.items()}
        reads = [(sp, self._split(lo, operands), n) for sp, lo, n in reads]
        writes = [(sp, self._split(lo, operands), n) for sp, lo, n in writes]
        template = self.pb.define(fn, reads=reads, writes=writes, **params)
        regs = [Reg(4 + i) for i in range(SPAWN_OPERANDS)]
        for i, reg in enumerate(regs):
            self.pb.li(reg, operands.get(i, 0))
        self.pb.spawn(template, *regs)


def _prefix(g, graphs):
    return "" if len(graphs) == 1 else f"g{g}_"


def _issue_graph(issue, pb, tasks, data, dumps):
    for task in tasks:
        if task[0] in ("load", "store"):
            kind, buf, buf_lo, dram_lo, beats = task
            dram = (Space.DRAM, data.beat + dram_lo, beats)
            bank = (SPACE[buf], buf_lo, beats)
            fn = (LOAD if kind == "load" else STORE)[buf]
            reads, writes = ([dram], [bank]) if kind == "load" else ([bank], [dram])
            issue.task(fn, **dma_params(dram_addr=data.beat + dram_lo, buf_addr=buf_lo,
                                        row_beats=beats), reads=reads, writes=writes)
        else:
            _, dst, src, w, k, m, bias = task
            issue.task(MVM_BIAS if bias else MVM_PLAIN, dst=dst, src=src, weights=w,
                       k_chunks=k, m_blocks=m,
                       reads=[(Space.NBIN, src * BPR[Buf.NBIN], k * BPR[Buf.NBIN]),
                              (Space.SB, w * BPR[Buf.SB], m * k * BPR[Buf.SB])],
                       writes=[(Space.NBOUT, dst * BPR[Buf.NBOUT], m * BPR[Buf.NBOUT])])
    for buf in Buf:      # copy every bank window out, after everything else
        pb.task(STORE[buf], **dma_params(dram_addr=dumps[buf].beat, buf_addr=0,
                                         row_beats=WINDOW[buf]),
                reads=[(SPACE[buf], 0, WINDOW[buf])],
                writes=[(Space.DRAM, dumps[buf].beat, WINDOW[buf])])


def build(graphs, seed):
    """One workload running ``graphs`` (a list of ``(tasks, spawn)``) one after another;
    outputs are named ``data``, ``bank_nbin`` ... for a single graph, ``g3_data`` ... in a
    batch."""
    rng = np.random.default_rng(seed)
    image = DramImage(CFG)
    pb = ProgramBuilder(CFG)
    inits = []
    for g, (tasks, spawn) in enumerate(graphs):
        pre = _prefix(g, graphs)
        init = rng.integers(-300, 300, DRAM_BEATS * V, dtype=np.int16)
        inits.append(init)
        data = image.alloc(f"{pre}data", DRAM_BEATS * V, init)
        dumps = {buf: image.alloc(f"{pre}bank_{buf.name.lower()}", WINDOW[buf] * V)
                 for buf in Buf}
        _issue_graph(_Spawner(pb, rng) if spawn else pb, pb, tasks, data, dumps)
    pb.halt()
    return Workload(name="random", mode="dypipe", config=CFG, program=pb.assemble(image=image),
                    image=image, expected=serial(graphs, inits))


def serial(graphs, inits):
    """The graphs' tasks one after another, in Python. Banks start as zeros, like the RTL's,
    and carry over from graph to graph."""
    banks = {buf: np.zeros((WINDOW[buf], V), np.int16) for buf in Buf}
    expected = {}
    for g, ((tasks, _), init) in enumerate(zip(graphs, inits)):
        dram = init.reshape(-1, V).copy()
        for task in tasks:
            _serial_task(task, dram, banks)
        pre = _prefix(g, graphs)
        expected[f"{pre}data"] = dram.reshape(-1)
        for buf in Buf:
            expected[f"{pre}bank_{buf.name.lower()}"] = banks[buf].reshape(-1).copy()
    return expected


def _serial_task(task, dram, banks):
    if task[0] == "load":
        _, buf, lo, d, n = task
        banks[buf][lo:lo + n] = dram[d:d + n]
    elif task[0] == "store":
        _, buf, lo, d, n = task
        dram[d:d + n] = banks[buf][lo:lo + n]
    else:
        _, dst, src, w, k, m, bias = task
        x = banks[Buf.NBIN].reshape(-1, C).astype(np.int64)
        wts = banks[Buf.SB].reshape(-1, R, C).astype(np.int64)
        out = banks[Buf.NBOUT].reshape(-1, R)
        results = []
        for i in range(m):
            acc = (out[dst + i].astype(np.int64) << CFG.frac_bits if bias
                   else np.zeros(R, np.int64))
            for kk in range(k):
                acc = acc + wts[w + i * k + kk] @ x[src + kk]
            results.append(write_back(acc, CFG.frac_bits, Act.NONE if bias else Act.RELU))
        for i, y in enumerate(results):
            out[dst + i] = y


# -- the fuzzer ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Batch:
    """One run: its graphs, the seed that made them and the memory timing it ran under."""
    index: int
    seed: int
    graphs: list
    timing: object


def make_batch(index, seed, size):
    """Batch ``index`` of a fuzz run seeded ``seed``: ``size`` graphs of 1..MAX_TASKS tasks,
    half of them spawned, and a random memory timing (no timing for every fourth batch)."""
    from .tb.mem_timing import MemTiming
    rng = np.random.default_rng([seed, index])
    pick, choose = numpy_drawers(rng)
    graphs = [(random_tasks(pick, choose, pick(1, MAX_TASKS)), bool(pick(0, 1)))
              for _ in range(size)]
    timing = None if index % 4 == 3 else MemTiming(
        int(rng.integers(2**32)), stall_percent=pick(0, 60), max_extra=pick(0, 40))
    return Batch(index, int(rng.integers(2**31)), graphs, timing)


def run_batch(batch):
    """Run ``batch`` on the RTL; returns ``(index, cycles, failed graphs, message)``."""
    from .tb.runner import run_workload, MachineError, SimulationTimeout
    workload = build(batch.graphs, batch.seed)
    try:
        r = run_workload(workload, timing=batch.timing or False)
    except (MachineError, SimulationTimeout) as exc:
        return batch.index, 0, list(range(len(batch.graphs))), str(exc)
    failed = sorted({int(line.split("_", 1)[0][1:]) for line in r.mismatches
                     if line.startswith("g")} if len(batch.graphs) > 1 else
                    ({0} if r.mismatches else set()))
    return batch.index, r.cycles, failed, "; ".join(r.mismatches[:3])


def main(n, *, seed=0, batch_size=50, jobs=1, out=None, log=print):
    """Run ``n`` random graphs in batches of ``batch_size``, ``jobs`` runs at a time. Returns
    a summary dict; failing batches are written to ``out`` (JSON) to be replayed."""
    from .tb.runner import build as build_rtl
    if n < 1 or batch_size < 1 or jobs < 1:
        raise ValueError("the number of graphs, the batch size and the jobs must be positive")
    sizes = [min(batch_size, n - start) for start in range(0, n, batch_size)]
    build_rtl(CFG, log=log)
    started = time.monotonic()
    done_graphs, failures, cycles, results = 0, [], 0, {}
    batches = {}
    with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
        futures = []
        for index, size in enumerate(sizes):
            batches[index] = size
            futures.append(pool.submit(_run_index, index, seed, size))
        for future in concurrent.futures.as_completed(futures):
            index, batch_cycles, failed, message = future.result()
            done_graphs += batches[index]
            cycles += batch_cycles
            results[index] = failed
            if failed:
                failures.append({"batch": index, "graphs": failed, "message": message})
                log(f"FAILED: batch {index}, graphs {failed}: {message}")
                if out:
                    _save(out, make_batch(index, seed, batches[index]), failed)
            log(f"[{done_graphs:>6}/{n}] graphs, {sum(len(f['graphs']) for f in failures)} "
                f"failed, {time.monotonic() - started:6.1f} s")
    wall = time.monotonic() - started
    summary = {"graphs": n, "batches": len(sizes), "batch_size": batch_size, "seed": seed,
               "failed_graphs": sum(len(f["graphs"]) for f in failures), "failures": failures,
               "simulated_cycles": cycles, "wall_seconds": round(wall, 1)}
    log(f"{n} random task graphs in {len(sizes)} runs: {summary['failed_graphs']} failed; "
        f"{cycles:,} cycles simulated in {wall:.0f} s ({n / wall:.1f} graphs/s)")
    return summary


def _run_index(index, seed, size):
    return run_batch(make_batch(index, seed, size))


def _save(out, batch, failed):
    path = pathlib.Path(out) / f"fuzz-failure-{batch.index}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "batch": batch.index, "seed": batch.seed, "failed_graphs": failed,
        "timing": dataclasses.asdict(batch.timing) if batch.timing else None,
        "graphs": [{"spawn": spawn, "tasks": [[t[0], *(x.name if isinstance(x, Buf) else x
                                                        for x in t[1:])] for t in tasks]}
                   for tasks, spawn in batch.graphs]}, indent=1))
