"""The dispatch controller (paper section 3.4): issues committed tasks to the module sequencers.

It holds up to ``config.task_ring`` task records, committed by SavePC in program order. When a
record arrives it is compared once with every record still held, giving two dependency vectors:

* ``order``: older unfinished tasks of the same module (a module runs its tasks one at a time,
  in order);
* ``data``: older unfinished tasks it conflicts with. Two tasks conflict when either is a
  barrier (committed without a footprint), or when a range of one and a range of the other lie
  in the same space, overlap, and at least one of the two writes it: read-after-write,
  write-after-read and write-after-write hazards alike.

A task issues to its module as soon as both vectors are empty; a finishing task clears its bit
in every vector and gives its context slot back. Tasks of different modules therefore run in
parallel whenever their footprints allow, whatever order the control program found them in.

A record naming no module, or with a range in no space or past the end of its space, is
malformed: the machine stops with :attr:`Err.BAD_TASK`.
"""

from amaranth import Module, Signal, Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..sw.isa import Err, Space, MODULE_UNITS
from .sequencer import ErrorReport
from .task import TaskPort, RetirePort, TaskRecord, space_beats

__all__ = ["Dispatcher", "ranges_conflict"]


def ranges_conflict(a, b):
    """Two footprint ranges (:data:`dypipe.rtl.task.Range` views) conflict."""
    return ((a.desc.space == b.desc.space) & (a.desc.space != Space.NONE)
            & (a.desc.write | b.desc.write) & (a.len != 0) & (b.len != 0)
            & (a.desc.lo < b.desc.lo + b.len) & (b.desc.lo < a.desc.lo + a.len))


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
    task : In(TaskPort)                         committed tasks from the control unit
    issue : Out(TaskPort).array(n_modules)      to the module sequencers
    finished : In(n_modules)                    a module's task ended (pulses)
    retire : Out(RetirePort).array(n_modules)   slots given back to the ring
    idle : Out(1)                               no unfinished task
    stall_hazard : Out(1)   a task next in line for its idle module waits on a data conflict
    stall_busy : Out(1)     a task free of conflicts waits for its module
    err : Out(ErrorReport)   ``pc`` is the record's; ``addr`` the bad field (unit or range)
    """

    def __init__(self, config):
        self._config = config
        n = len(MODULE_UNITS)
        super().__init__({
            "task": In(TaskPort(config)),
            "issue": Out(TaskPort(config)).array(n),
            "finished": In(n),
            "retire": Out(RetirePort(config)).array(n),
            "idle": Out(1), "stall_hazard": Out(1), "stall_busy": Out(1),
            "err": Out(ErrorReport()),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        W = cfg.task_ring
        layout = TaskRecord(cfg)
        recs = [Signal(layout, name=f"rec{j}") for j in range(W)]
        valid = Signal(W)
        issued = Signal(W)
        data_deps = [Signal(W, name=f"data_deps{j}") for j in range(W)]
        order_deps = [Signal(W, name=f"order_deps{j}") for j in range(W)]
        stopped = Signal()

        # -- tasks finishing this cycle --------------------------------------------------------
        running = [Signal(range(W), name=f"running_{u.name.lower()}") for u in MODULE_UNITS]
        finishing = Signal(W)
        fin_terms = []
        for u, idx in enumerate(running):
            fin_terms.append(Const(0, W) | (self.finished[u] << idx))
            m.d.comb += self.retire[u].valid.eq(self.finished[u])
            for j in range(W):
                with m.If(idx == j):
                    m.d.comb += self.retire[u].slot.eq(recs[j].slot)
        fin = fin_terms[0]
        for term in fin_terms[1:]:
            fin = fin | term
        m.d.comb += finishing.eq(fin)
        live = ~finishing & valid

        # -- a new record: check it, find it a place, compute its dependencies -----------------
        new = self.task.payload
        free_idx, has_free = _first_set(m, ~valid, "free")
        malformed = Signal()
        bad_addr = Signal(32)
        with m.If(new.unit >= len(MODULE_UNITS)):
            m.d.comb += [malformed.eq(1), bad_addr.eq(new.unit)]
        for rng in new.ranges:
            space = rng.desc.space
            with m.Switch(space.as_value()):
                for sp in Space:
                    with m.Case(sp):
                        if sp != Space.NONE:
                            with m.If(rng.desc.lo + rng.len > space_beats(cfg, sp)):
                                m.d.comb += [malformed.eq(1), bad_addr.eq(rng.desc.as_value())]
                with m.Default():
                    m.d.comb += [malformed.eq(1), bad_addr.eq(rng.desc.as_value())]
        conflicts = Signal(W)
        same_unit = Signal(W)
        for j, rec in enumerate(recs):
            pairs = [ranges_conflict(a, b) for a in new.ranges for b in rec.ranges]
            hit = new.barrier | rec.barrier
            for p in pairs:
                hit = hit | p
            m.d.comb += [conflicts[j].eq(live[j] & hit),
                         same_unit[j].eq(live[j] & (rec.unit == new.unit))]

        insert = Signal()
        m.d.comb += [self.task.ready.eq(has_free & ~stopped),
                     insert.eq(self.task.valid & self.task.ready & ~malformed)]
        with m.If(self.task.valid & self.task.ready & malformed):
            m.d.comb += [self.err.valid.eq(1), self.err.code.eq(Err.BAD_TASK),
                         self.err.pc.eq(new.pc), self.err.addr.eq(bad_addr)]
            m.d.sync += stopped.eq(1)

        # -- issue: per module, the (only possible) waiting task with no dependencies ---------
        started = Signal(W)
        for u, port in enumerate(self.issue):
            cand = Signal(W, name=f"cand_{MODULE_UNITS[u].name.lower()}")
            for j, rec in enumerate(recs):
                m.d.comb += cand[j].eq(valid[j] & ~issued[j] & (rec.unit == u)
                                       & (data_deps[j] == 0) & (order_deps[j] == 0))
            idx, found = _first_set(m, cand, f"issue_{u}")
            m.d.comb += port.valid.eq(found)
            for j, rec in enumerate(recs):
                with m.If(idx == j):
                    m.d.comb += port.payload.eq(rec)
            with m.If(port.valid & port.ready):
                m.d.sync += running[u].eq(idx)
                m.d.comb += started.bit_select(idx, 1).eq(1)

        # -- state update -------------------------------------------------------------------
        inserted = Signal(W)
        with m.If(insert):
            m.d.comb += inserted.bit_select(free_idx, 1).eq(1)
        m.d.sync += [valid.eq((valid & ~finishing) | inserted),
                     issued.eq((issued | started) & ~inserted)]
        for j in range(W):
            with m.If(inserted[j]):
                m.d.sync += [recs[j].eq(new), data_deps[j].eq(conflicts),
                             order_deps[j].eq(same_unit)]
            with m.Else():
                m.d.sync += [data_deps[j].eq(data_deps[j] & ~finishing),
                             order_deps[j].eq(order_deps[j] & ~finishing)]

        # -- status -------------------------------------------------------------------------
        hazard = Signal(W)
        busy = Signal(W)
        for j in range(W):
            waiting = valid[j] & ~issued[j]
            m.d.comb += [hazard[j].eq(waiting & (order_deps[j] == 0) & (data_deps[j] != 0)),
                         busy[j].eq(waiting & (order_deps[j] != 0) & (data_deps[j] == 0))]
        m.d.comb += [self.idle.eq(valid == 0), self.stall_hazard.eq(hazard.any()),
                     self.stall_busy.eq(busy.any())]
        return m
