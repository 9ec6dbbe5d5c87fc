"""A layer's tasks as data, and the three kinds of program that issue them.

The operator compilers (``conv``, ``pool``, ``eltwise``) describe a layer as a list of *steps*,
each a list of :class:`Task` with integer parameters and footprints. :func:`emit` turns them
into a control program:

* ``static``: every task unrolled, parameters and footprints as immediates;
* ``dypipe``: the control program loops. Runs of steps that repeat the same tasks, with values
  that change by a constant from one step to the next or cycle through a buffer ring, become a
  loop whose contexts are computed at run time: each changing value is an induction (or ring)
  register plus a constant;
* ``nonepipe``: the ``dypipe`` program with every task a barrier.
"""

import dataclasses

from .isa import Space, NUM_REGS, FOOTPRINT_RANGES
from .program import Reg, ZERO, AT
from .workload import MODES

__all__ = ["Task", "emit", "UNROLL"]

#: Unroll factors tried when looking for loops (for steps whose tasks alternate).
UNROLL = (1, 2, 3)

_COUNTER = Reg(2)
_SCRATCH = Reg(3)
_LO_REGS = tuple(Reg(4 + i) for i in range(FOOTPRINT_RANGES))
_INDUCTION = tuple(Reg(i) for i in range(4 + FOOTPRINT_RANGES, NUM_REGS - 2 * FOOTPRINT_RANGES))


@dataclasses.dataclass(frozen=True)
class Task:
    """One task: a module function, its parameters, and its footprint as ``(space, first_beat,
    beats)`` triples (integers)."""
    fn: object
    params: dict
    reads: tuple = ()
    writes: tuple = ()

    def __post_init__(self):
        missing = set(self.fn.params) - set(self.params)
        extra = set(self.params) - set(self.fn.params)
        if missing or extra:
            raise ValueError(f"{self.fn.name}: missing parameters {sorted(missing)}, unknown "
                             f"{sorted(extra)}")
        if len(self.reads) + len(self.writes) > FOOTPRINT_RANGES:
            raise ValueError(f"{self.fn.name}: more than {FOOTPRINT_RANGES} footprint ranges")

    def shape(self):
        """What must match for two tasks to share loop code."""
        return (self.fn.label, tuple((Space(sp), int(n)) for sp, _, n in self.reads),
                tuple((Space(sp), int(n)) for sp, _, n in self.writes))

    def values(self):
        """The parameters and the first beats of the footprint ranges, in a fixed order."""
        return ([int(self.params[name]) for name in self.fn.params]
                + [int(lo) for _, lo, _ in self.reads + self.writes])


def emit(pb, steps, mode):
    """Emit ``steps`` (a list of lists of :class:`Task`) into ``pb`` for ``mode``. There is an
    overlay boundary after every task outside a loop and after every loop, none inside one."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    steps = [list(s) for s in steps if s]
    if mode == "static":
        for task in (t for step in steps for t in step):
            _straight(pb, task, barrier=False)
        return
    barrier = mode == "nonepipe"
    i = 0
    while i < len(steps):
        unroll, count, models = _best_loop(steps, i)
        body = [t for s in steps[i:i + unroll] for t in s]
        if count == 1:
            for task in body:
                _straight(pb, task, barrier)
        else:
            with pb.atomic():
                _loop(pb, body, count, models, barrier)
            pb.boundary()
        i += unroll * count


#: Periods a ring-buffer address may cycle with inside a loop.
PERIODS = (2, 3, 4, 6)


def _model(seq):
    """How a value changes from one loop iteration to the next: ``(first, delta, period)``
    with ``value_k = first + (k mod period) * delta`` (``period`` None: ``first + k * delta``),
    or None when neither fits."""
    d = seq[1] - seq[0]
    if all(b - a == d for a, b in zip(seq, seq[1:])):
        return (seq[0], d, None)
    for p in PERIODS:
        if p < len(seq) and all(seq[k] == seq[k % p] for k in range(len(seq))) and all(
                seq[j] == seq[0] + j * (seq[1] - seq[0]) for j in range(p)):
            return (seq[0], seq[1] - seq[0], p)
    return None


def _models(groups):
    """Models of every value over ``groups`` (lists of tasks of one shape), or None."""
    columns = zip(*(_flat(g) for g in groups))
    models = [_model(list(c)) for c in columns]
    if any(m is None for m in models):
        return None
    if len({(d, p) for _, d, p in models if d}) > len(_INDUCTION):
        return None
    return models


def _best_loop(steps, i):
    """``(unroll, count, models)`` of the loop starting at step ``i`` that covers the most
    steps (``count`` 1: no loop)."""
    best = (1, 1, None)
    for u in UNROLL:
        groups = [[t for s in steps[k:k + u] for t in s] for k in range(i, len(steps) - u + 1, u)]
        if len(groups) < 2:
            break
        shape = [t.shape() for t in groups[0]]
        count, models = 1, None
        while count < len(groups) and [t.shape() for t in groups[count]] == shape:
            trial = _models(groups[:count + 1])
            if trial is None:
                break
            count, models = count + 1, trial
        if count > 1 and u * count > best[0] * best[1]:
            best = (u, count, models)
    return best


def _flat(tasks):
    return [v for t in tasks for v in t.values()]


def _straight(pb, task, barrier):
    pb.task(task.fn, **({} if barrier else dict(reads=list(task.reads),
                                                 writes=list(task.writes))), **task.params)


def _add(pb, dst, src, value):
    if -(1 << 15) <= value < (1 << 15):
        pb.emit(f"addi {dst}, {src}, {value}")
    else:
        pb.li(AT, value)
        pb.emit(f"add {dst}, {src}, {AT}")


def _loop(pb, body, count, models, barrier):
    """``count`` iterations of ``body`` (the first one's tasks); value ``k`` of the body
    follows ``models[k]``."""
    regs = dict(zip(sorted({(d, p or 0) for _, d, p in models if d}), _INDUCTION))
    for reg in regs.values():
        pb.li(reg, 0)
    pb.li(_COUNTER, count)
    top = pb.label(pb.fresh_label("loop"))
    k = 0

    def value(into):
        nonlocal k
        a, d, p = models[k]
        k += 1
        if d == 0:
            return a
        reg = regs[(d, p or 0)]
        if a == 0:
            return reg
        _add(pb, into, reg, a)
        return into

    for task in body:
        for offset, name in enumerate(task.fn.params):
            v = value(_SCRATCH)
            pb.savectx(v if isinstance(v, Reg) else pb.value(v) if v else ZERO, offset,
                       f"{task.fn.name}.{name}")
        ranges = [(sp, value(_LO_REGS[j]), n)
                  for j, (sp, _, n) in enumerate(task.reads + task.writes)]
        if barrier:
            pb.save_pc(task.fn)
        else:
            nr = len(task.reads)
            pb.save_pc(task.fn, reads=ranges[:nr], writes=ranges[nr:])
    for (d, p), reg in regs.items():
        _add(pb, reg, reg, d)
        if p:
            wrap = pb.fresh_label("ring")
            pb.li(AT, p * d)
            pb.emit(f"bne {reg}, {AT}, {wrap}")
            pb.li(reg, 0)
            pb.label(wrap)
    pb.emit(f"addi {_COUNTER}, {_COUNTER}, -1")
    pb.emit(f"bne {_COUNTER}, r0, {top}")
