"""Random task graphs on the RTL: the dispatcher may reorder, the results may not change.

A program is a random list of tasks (DMA loads, DMA stores, matrix-vector products) over small
windows of DRAM and of each bank, so that they overlap often, each declaring its exact
footprint. It runs on the RTL with DyPipe's dispatcher; a Python model executes the same tasks
one after another. The DRAM window and every bank window (copied out by final tasks) must be
identical.

The same tasks are also issued as SPAWNs: each task through a template of its own, whose
values are split at random between the template and the four operand registers; the template
numbers wrap around, so templates are defined again while tasks spawned from them are still
waiting or running.
"""

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

from dypipe.config import PRESETS
from dypipe.sw.fc import dma_params
from dypipe.sw.golden import write_back
from dypipe.sw.image import DramImage
from dypipe.sw.isa import Act, Buf, Space, Unit, DMA_PARAMS, MVM_PARAMS, SPAWN_OPERANDS
from dypipe.sw.program import ARG, ProgramBuilder, Reg, module_function
from dypipe.sw.workload import Workload
from dypipe.tb.runner import run_workload

pytestmark = pytest.mark.verilator
CFG = PRESETS["small"]
R, C, V = CFG.pe_rows, CFG.pe_cols, CFG.beat_elems
BPR = {Buf.NBIN: C // V, Buf.SB: R * C // V, Buf.NBOUT: R // V}   # beats per row
WINDOW = {Buf.NBIN: 6 * BPR[Buf.NBIN], Buf.SB: 6 * BPR[Buf.SB], Buf.NBOUT: 6 * BPR[Buf.NBOUT]}
DRAM_BEATS = 48
SPACE = {Buf.NBIN: Space.NBIN, Buf.SB: Space.SB, Buf.NBOUT: Space.NBOUT}


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
    tasks = []
    for _ in range(n):
        kind = choose(["load", "store", "mvm"])
        tasks.append(mvm_task(pick, choose) if kind == "mvm" else dma_task(pick, choose, kind))
    return tasks


@st.composite
def programs(draw, max_tasks=14):
    pick = lambda lo, hi: draw(st.integers(lo, hi))
    choose = lambda seq: draw(st.sampled_from(seq))
    return random_tasks(pick, choose, draw(st.integers(1, max_tasks)))


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


def build(tasks, seed, spawn=False):
    rng = np.random.default_rng(seed)
    image = DramImage(CFG)
    init = rng.integers(-300, 300, DRAM_BEATS * V, dtype=np.int16)
    data = image.alloc("data", DRAM_BEATS * V, init)
    dumps = {buf: image.alloc(f"bank_{buf.name.lower()}", WINDOW[buf] * V) for buf in Buf}
    pb = ProgramBuilder(CFG)
    issue = _Spawner(pb, rng) if spawn else pb
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
            issue.task(MVM_BIAS if bias else MVM_PLAIN, dst=dst, src=src, weights=w, k_chunks=k,
                    m_blocks=m,
                    reads=[(Space.NBIN, src * BPR[Buf.NBIN], k * BPR[Buf.NBIN]),
                           (Space.SB, w * BPR[Buf.SB], m * k * BPR[Buf.SB])],
                    writes=[(Space.NBOUT, dst * BPR[Buf.NBOUT], m * BPR[Buf.NBOUT])])
    for buf in Buf:      # copy every bank window out, after everything else
        pb.task(STORE[buf], **dma_params(dram_addr=dumps[buf].beat, buf_addr=0,
                                         row_beats=WINDOW[buf]),
                reads=[(SPACE[buf], 0, WINDOW[buf])],
                writes=[(Space.DRAM, dumps[buf].beat, WINDOW[buf])])
    pb.halt()
    expected = serial(tasks, init)
    return Workload(name="random", mode="dypipe", config=CFG, program=pb.assemble(image=image),
                    image=image, expected=expected)


def serial(tasks, init):
    """The tasks one after another, in Python. Banks start as zeros, like the RTL's."""
    dram = init.reshape(-1, V).copy()
    banks = {buf: np.zeros((WINDOW[buf], V), np.int16) for buf in Buf}
    for task in tasks:
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
    expected = {"data": dram.reshape(-1)}
    for buf in Buf:
        expected[f"bank_{buf.name.lower()}"] = banks[buf].reshape(-1)
    return expected


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs(), st.integers(0, 1000), st.booleans())
def test_random_programs_match_serial_execution(tasks, seed, spawn):
    r = run_workload(build(tasks, seed, spawn))
    assert r.verified, f"{tasks}: {r.mismatches}"


@pytest.mark.parametrize("spawn", [False, True], ids=["savepc", "spawn"])
def test_long_random_program_matches_serial_execution(spawn):
    """One long program: the ring fills and wraps, slots are reused many times (and with
    spawns, every template number is defined again three times)."""
    rng = np.random.default_rng(7)
    tasks = random_tasks(lambda lo, hi: int(rng.integers(lo, hi + 1)),
                         lambda seq: seq[int(rng.integers(len(seq)))], 120)
    r = run_workload(build(tasks, 7, spawn))
    assert r.verified, r.mismatches
    if not spawn:       # (a definition per task: there the control unit sets the pace)
        # The dispatcher overlapped work: fewer cycles than the modules' busy cycles added up.
        c = r.counters
        assert r.cycles < c["busy_io"] + c["busy_pfu"] + c["busy_store"]
