"""The dispatch controller (paper section 3.4): issues committed tasks to the module sequencers.

It holds up to ``config.task_ring`` task records, committed by SavePC in program order. When a
record arrives it is compared once with every record still held, giving two dependency vectors:

* ``order``: older unreleased tasks of the same module (a module runs its tasks' code one at a
  time, in order; a task is *released* when its code has ended, while its last transfers may
  still be under way);
* ``data``: older unfinished tasks it conflicts with. Two tasks conflict when either is a
  barrier (committed without a footprint), or when a range of one and a range of the other lie
  in the same space, overlap, and at least one of the two writes it: read-after-write,
  write-after-read and write-after-write hazards alike.

A task *issues* to its module as soon as its order vector is empty and the module is free: the
sequencer runs its prologue (context loads, address arithmetic) at once, but ``go`` holds its
first macro-instruction (and its END) until its data vector is empty too, so the prologue
overlaps the conflicting tasks' last transfers instead of following them. A released task
clears its bit in the order vectors, so the module can start its next task while the last
one's data is still in flight; a finishing task (its last transfer has landed) clears its bit
in every vector and gives its context slot back. Tasks of different modules therefore run in
parallel whenever their footprints allow, whatever order the control program found them in.

A record naming no module, or with a range in no space or past the end of its space, is
malformed: the machine stops with :attr:`Err.BAD_TASK`.
"""

from types import SimpleNamespace

from amaranth import Module, Signal, Const, Mux, Cat
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..sw.isa import Err, Space, MODULE_UNITS, FOOTPRINT_RANGES
from .sequencer import ErrorReport
from .task import (TaskPort, IssuePort, RetirePort, TaskRecord, TaskEntry, Extent, extent_of,
                   prepare_task, space_beats, PENDING)

__all__ = ["Dispatcher", "ranges_conflict"]


def _or(terms):
    out = terms[0]
    for t in terms[1:]:
        out = out | t
    return out


def ranges_conflict(a, b):
    """Two :func:`~.task.Extent` views conflict: they lie in the same space, overlap, and at
    least one of the two writes it."""
    return ((a.space == b.space) & (a.space != Space.NONE) & (a.write | b.write)
            & (a.lo < b.hi) & (b.lo < a.hi))


def _lowest_set(m, vector, name):
    """The lowest set bit of ``vector`` alone (one-hot, or 0), its index and whether there is
    one: a carry chain and an OR per index bit, where a priority chain of ``len(vector)``
    multiplexers would put each bit behind the ones below it."""
    onehot = Signal(len(vector), name=f"{name}_sel")
    index = Signal(range(max(2, len(vector))), name=f"{name}_idx")
    found = Signal(name=f"{name}_any")
    m.d.comb += [onehot.eq(vector & (~vector + 1)[:len(vector)]), found.eq(vector.any()),
                 index.eq(_or([Mux(onehot[j], j, 0) for j in range(len(vector))]))]
    return onehot, index, found


def _first_set(m, vector, name):
    """Index of the lowest set bit of ``vector`` and whether there is one."""
    index = Signal(range(max(2, len(vector))), name=f"{name}_idx")
    found = Signal(name=f"{name}_any")
    m.d.comb += found.eq(vector.any())
    for i in reversed(range(len(vector))):
        with m.If(vector[i]):
            m.d.comb += index.eq(i)
    return index, found


class Dispatcher(wiring.Component):
    """Members
    -------
    task : In(TaskPort)                         committed tasks from the control unit (with
                                                ``prepared``: In(stream.Signature(TaskEntry)),
                                                from the :class:`~.task.TaskRegister`)
    issue : Out(IssuePort).array(n_modules)     to the module sequencers
    go : Out(n_modules)     the task a module runs may act (its data vector is empty)
    released : In(n_modules)                    a module's task ran END (pulses)
    finished : In(n_modules)                    a module's oldest released task finished
    retire : Out(RetirePort).array(n_modules)   slots given back to the ring
    idle : Out(1)                               no unfinished task
    live : Out(range(task_ring + 1))            unfinished tasks
    stall_hazard : Out(1)   a task its module runs waits for ``go`` (on a data conflict)
    stall_busy : Out(1)     a task waits for its module to release an older one
    err : Out(ErrorReport)   ``pc`` is the record's; ``addr`` the bad field (unit or range)

    Parameters
    ----------
    config : Config
    conflict : function
        ``conflict(a, b)``: whether two footprint ranges (:func:`~.task.Extent` views) conflict
        (default :func:`ranges_conflict`). Only the formal check (:mod:`dypipe.formal`) passes
        another: a deliberately broken one, to show that the check catches it.
    prepared : bool
        Take the records prepared (:func:`~.task.prepare_task`: their ranges' ends) by the
        task register in front, as the top does; else prepare them here, in the cycle they
        arrive (the unit tests and the formal check, which drive the dispatcher alone: the
        same statements either way).
    invariants : None, ``Assert`` or ``Assume``
        State the dispatcher's internal consistency with this statement (for the formal
        check's induction proof: ``Assert`` to prove it, ``Assume`` to rely on it once proven),
        and keep its registers in :attr:`state` when elaborated. It holds while the inputs
        keep the contracts above: a module releases only the task it runs, with fewer than
        :data:`~.task.PENDING` released tasks unfinished, and finishes only a released task.
    """

    def __init__(self, config, *, conflict=ranges_conflict, invariants=None, prepared=False):
        self._config = config
        self._prepared = prepared
        self._conflict = conflict
        self._invariants = invariants
        self.state = None
        n = len(MODULE_UNITS)
        super().__init__({
            "task": In(stream.Signature(TaskEntry(config)) if prepared else TaskPort(config)),
            "issue": Out(IssuePort(config)).array(n), "go": Out(n),
            "released": In(n), "finished": In(n),
            "retire": Out(RetirePort(config)).array(n),
            "idle": Out(1), "live": Out(range(config.task_ring + 1)),
            "stall_hazard": Out(1), "stall_busy": Out(1),
            "err": Out(ErrorReport()),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        W = cfg.task_ring
        layout = TaskRecord(cfg)
        recs = [Signal(layout, name=f"rec{j}") for j in range(W)]
        # Each held record's ranges as the conflict test compares them (no adders per pair).
        extents = [[Signal(Extent(cfg), name=f"ext{j}_{i}") for i in range(FOOTPRINT_RANGES)]
                   for j in range(W)]
        valid = Signal(W)
        issued = Signal(W)
        data_deps = [Signal(W, name=f"data_deps{j}") for j in range(W)]
        order_deps = [Signal(W, name=f"order_deps{j}") for j in range(W)]
        stopped = Signal()

        # -- tasks released and finishing this cycle ------------------------------------------
        # Per module: the task running its code, and the released tasks still finishing (a
        # queue, oldest first; they finish in order).
        running = [Signal(range(W), name=f"running_{u.name.lower()}") for u in MODULE_UNITS]
        pend = [[Signal(range(W), name=f"pend_{u.name.lower()}{k}") for k in range(PENDING)]
                for u in MODULE_UNITS]
        npend = [Signal(range(PENDING + 1), name=f"npend_{u.name.lower()}")
                 for u in MODULE_UNITS]
        releasing, finishing = Signal(W), Signal(W)
        rel_terms, fin_terms = [], []
        for u, idx in enumerate(running):
            # A task released and finished in the same cycle finishes from ``running``.
            fin_idx = Signal(range(W), name=f"fin_idx_{u}")
            m.d.comb += fin_idx.eq(Mux(npend[u] == 0, idx, pend[u][0]))
            rel_terms.append(Const(0, W) | (self.released[u] << idx))
            fin_terms.append(Const(0, W) | (self.finished[u] << fin_idx))
            m.d.comb += self.retire[u].valid.eq(self.finished[u])
            for j in range(W):
                with m.If(fin_idx == j):
                    m.d.comb += self.retire[u].slot.eq(recs[j].slot)
            # The queue: push on release, pop on finish.
            push = self.released[u] & ~(self.finished[u] & (npend[u] == 0))
            pop = self.finished[u] & (npend[u] != 0)
            count = npend[u] + push - pop
            m.d.sync += npend[u].eq(count)
            with m.If(pop):
                for k in range(PENDING - 1):
                    m.d.sync += pend[u][k].eq(pend[u][k + 1])
            with m.If(push):
                for k in range(PENDING):
                    with m.If(npend[u] - pop == k):
                        m.d.sync += pend[u][k].eq(idx)
        m.d.comb += [releasing.eq(_or(rel_terms)), finishing.eq(_or(fin_terms))]
        live = ~finishing & valid
        released = Signal(W)

        # -- a new record: check it, find it a place, compute its dependencies -----------------
        if self._prepared:
            entry = self.task.payload
        else:
            entry = Signal(TaskEntry(cfg), name="entry")
            prepare_task(m, self.task.payload, entry)
        new = entry.rec
        new_extents = [entry.ext[i] for i in range(FOOTPRINT_RANGES)]
        free_idx, has_free = _first_set(m, ~valid, "free")
        malformed = Signal()
        bad_addr = Signal(32)
        with m.If(new.unit >= len(MODULE_UNITS)):
            m.d.comb += [malformed.eq(1), bad_addr.eq(new.unit)]
        for i, (rng, ext) in enumerate(zip(new.ranges, new_extents)):
            space = rng.desc.space
            with m.Switch(space.as_value()):
                for sp in Space:
                    with m.Case(sp):
                        if sp != Space.NONE:
                            with m.If(entry.long[i] | (ext.hi > space_beats(cfg, sp))):
                                m.d.comb += [malformed.eq(1), bad_addr.eq(rng.desc.as_value())]
                with m.Default():
                    m.d.comb += [malformed.eq(1), bad_addr.eq(rng.desc.as_value())]
        conflicts = Signal(W)
        same_unit = Signal(W)
        for j, rec in enumerate(recs):
            pairs = [self._conflict(a, b) for a in new_extents for b in extents[j]]
            hit = new.barrier | rec.barrier
            for p in pairs:
                hit = hit | p
            m.d.comb += [conflicts[j].eq(live[j] & hit),
                         same_unit[j].eq(live[j] & ~released[j] & ~releasing[j]
                                         & (rec.unit == new.unit))]

        # A record offered is written into the free slot whatever it holds; only a well-formed
        # one makes the slot valid. So the malformed check drives a few valid bits, not the
        # write enables of the record's few hundred flip-flops (docs/fpga.md).
        write, insert = Signal(), Signal()
        m.d.comb += [self.task.ready.eq(has_free & ~stopped),
                     write.eq(self.task.valid & self.task.ready), insert.eq(write & ~malformed)]
        with m.If(self.task.valid & self.task.ready & malformed):
            m.d.comb += [self.err.valid.eq(1), self.err.code.eq(Err.BAD_TASK),
                         self.err.pc.eq(new.pc), self.err.addr.eq(bad_addr)]
            m.d.sync += stopped.eq(1)

        # -- issue: per module, the (only possible) waiting task with no order dependency ----
        # Its data dependencies hold it at ``go``; issued tasks with data dependencies left:
        holding = Signal(W)
        started = Signal(W)
        for u, port in enumerate(self.issue):
            name = MODULE_UNITS[u].name.lower()
            mine, cand = Signal(W, name=f"mine_{name}"), Signal(W, name=f"cand_{name}")
            m.d.comb += mine.eq(Cat(rec.unit == u for rec in recs))
            for j in range(W):
                m.d.comb += cand[j].eq(valid[j] & ~issued[j] & mine[j] & (order_deps[j] == 0))
            # Only the task the module runs can hold (a released task has no data dependency
            # left); it is issued from the cycle after it was taken, its first instruction's.
            m.d.comb += self.go[u].eq(~(holding & mine).any())
            # The offer selects its record one-hot (an AND-OR), so that the PC reaches the
            # sequencer's fetch address soon after the dependency vectors.
            sel, idx, found = _lowest_set(m, cand, f"issue_{u}")
            m.d.comb += [port.valid.eq(found),
                         port.payload.pc.eq(_or([Mux(sel[j], rec.pc, 0)
                                                 for j, rec in enumerate(recs)])),
                         port.payload.slot.eq(_or([Mux(sel[j], rec.slot, 0)
                                                   for j, rec in enumerate(recs)]))]
            with m.If(port.valid & port.ready):
                m.d.sync += running[u].eq(idx)
                m.d.comb += started.bit_select(idx, 1).eq(1)

        # -- state update -------------------------------------------------------------------
        written, inserted = Signal(W), Signal(W)
        with m.If(write):
            m.d.comb += written.bit_select(free_idx, 1).eq(1)
        m.d.comb += inserted.eq(Mux(insert, written, 0))
        m.d.sync += [valid.eq((valid & ~finishing) | inserted),
                     issued.eq((issued | started) & ~inserted),
                     released.eq((released | releasing) & ~inserted)]
        for j in range(W):
            with m.If(written[j]):
                m.d.sync += [recs[j].eq(new), data_deps[j].eq(conflicts),
                             order_deps[j].eq(same_unit)]
                m.d.sync += [ext.eq(n) for ext, n in zip(extents[j], new_extents)]
            with m.Else():
                m.d.sync += [data_deps[j].eq(data_deps[j] & ~finishing),
                             order_deps[j].eq(order_deps[j] & ~finishing & ~releasing)]

        # -- status -------------------------------------------------------------------------
        busy = Signal(W)
        for j in range(W):
            m.d.comb += [holding[j].eq(valid[j] & issued[j] & (data_deps[j] != 0)),
                         busy[j].eq(valid[j] & ~issued[j] & (order_deps[j] != 0))]
        m.d.comb += [self.idle.eq(valid == 0), self.live.eq(sum(valid[j] for j in range(W))),
                     self.stall_hazard.eq(holding.any()),
                     self.stall_busy.eq(busy.any())]
        if self._invariants is not None:
            self.state = SimpleNamespace(
                recs=recs, extents=extents, valid=valid, issued=issued, released=released,
                data_deps=data_deps, order_deps=order_deps, stopped=stopped, running=running,
                pend=pend, npend=npend)
            _invariants(m, self.state, self._invariants)
        return m


def _invariants(m, s, claim):
    """Dependencies point only at other held tasks, never both ways; an order dependency is on
    an unreleased task of the same module; an issued task has no order dependency left; a
    released task was issued and has no data dependency left; each module's released tasks are
    held, released, its own and distinct; a held task's extents are its ranges'. Stated with
    ``claim`` (``Assert`` or ``Assume``)."""
    W = len(s.valid)
    for j, rec in enumerate(s.recs):
        others = s.valid & ((1 << W) - 1 - (1 << j))
        with m.If(s.valid[j]):
            for i, (rng, ext) in enumerate(zip(rec.ranges, s.extents[j])):
                expect = Signal.like(ext, name=f"expect_ext{j}_{i}")
                m.d.comb += extent_of(rng, expect)
                m.d.comb += claim(expect.as_value() == ext.as_value())
            m.d.comb += [claim((s.data_deps[j] & ~others) == 0),
                         claim((s.order_deps[j] & ~others) == 0),
                         claim((s.order_deps[j] & s.released) == 0),
                         claim(~s.issued[j] | (s.order_deps[j] == 0)),
                         claim(~s.released[j] | s.issued[j]),
                         claim(~s.released[j] | (s.data_deps[j] == 0))]
            for k in range(W):
                m.d.comb += claim(~s.data_deps[j][k] | ~s.data_deps[k][j])
                with m.If(s.order_deps[j][k]):
                    m.d.comb += claim(s.recs[k].unit == rec.unit)
    for u, (pend, npend) in enumerate(zip(s.pend, s.npend)):
        m.d.comb += claim(npend <= PENDING)
        for k, idx in enumerate(pend):
            for j, rec in enumerate(s.recs):
                with m.If((npend > k) & (idx == j)):
                    m.d.comb += [claim(s.valid[j] & s.released[j]), claim(rec.unit == u)]
            if k:
                with m.If(npend > k):
                    m.d.comb += claim(idx != pend[0])
