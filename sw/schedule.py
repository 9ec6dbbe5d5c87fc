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

import numpy as np

from .isa import Space, NUM_REGS, FOOTPRINT_RANGES
from .program import Reg, ZERO, AT
from .workload import MODES

__all__ = ["Task", "emit", "MAX_UNROLL"]

#: Most steps one loop iteration may hold (a layer whose tiles have several groups of output
#: channels loops over tiles, each iteration all of a tile's steps).
MAX_UNROLL = 48
#: A loop body may take at most this share of the instruction memory (1 / LOOP_SHARE), so that
#: it fits an overlay window.
LOOP_SHARE = 4

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
        unroll, count, models = _best_loop(steps, i, pb.config.imem_words // LOOP_SHARE)
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
    seq = np.asarray(seq, dtype=np.int64)
    fits = _fitting(seq[:, None])
    n = len(seq)
    for model, length in fits:
        if length[0] >= n:
            return (int(seq[0]), int(seq[1] - seq[0]), model)
    return None


def _prefix(ok):
    """Per column, how many leading rows of the boolean matrix ``ok`` are all True."""
    bad = ~ok
    return np.where(bad.any(axis=0), bad.argmax(axis=0), ok.shape[0])


def _fitting(values):
    """For a (count, columns) matrix of values over loop iterations: ``[(period, lengths)]``,
    for the linear model (period None) and each ring period, how many leading iterations of
    each column fit it."""
    n = values.shape[0]
    step = values[1:2] - values[:1]
    k = np.arange(n)[:, None]
    linear = _prefix(values == values[:1] + k * step)
    out = [(None, linear)]
    for p in PERIODS:
        if p >= n:
            break
        # Below one period the ring is the line, so its first p values are checked too.
        out.append((p, _prefix(values == values[:1] + (k % p) * step)))
    return out


def _models(groups):
    """``(count, models)``: how many leading ``groups`` (lists of tasks of one shape) run as
    one loop, and the model of every value over them (count 1: none)."""
    values = np.array([_flat(g) for g in groups], dtype=np.int64)
    if len(groups) < 2:
        return 1, None
    fits = _fitting(values)
    best = np.max([length for _, length in fits], axis=0)
    count = int(best.min())
    while count >= 2:
        models = []
        for j in range(values.shape[1]):
            period = next(p for p, length in fits if length[j] >= count)
            models.append((int(values[0, j]), int(values[1, j] - values[0, j]), period))
        if len({(d, p) for _, d, p in models if d}) <= len(_INDUCTION):
            return count, models
        count -= 1
    return 1, None


def _words(step):
    """About how many instructions a step's tasks take in a loop body."""
    return sum(len(t.fn.params) + 2 * (len(t.reads) + len(t.writes)) + 4 for t in step)


def _best_loop(steps, i, max_words):
    """``(unroll, count, models)`` of the loop starting at step ``i`` that saves the most code
    (``count`` 1: no loop), its body about ``max_words`` instructions at most."""
    best, saved = (1, 1, None), 0
    words = 0
    for u in range(1, min(MAX_UNROLL, (len(steps) - i) // 2) + 1):
        words += _words(steps[i + u - 1])
        if len(steps) - i - u <= saved or (u > 1 and words > max_words):
            break
        shape = [t.shape() for s in steps[i:i + u] for t in s]
        groups = [[t for s in steps[i:i + u] for t in s]]
        for k in range(i + u, len(steps) - u + 1, u):
            group = [t for s in steps[k:k + u] for t in s]
            if [t.shape() for t in group] != shape:
                break
            groups.append(group)
        if len(groups) < 2:
            continue
        count, models = _models(groups)
        if count > 1 and u * (count - 1) > saved:
            best, saved = (u, count, models), u * (count - 1)
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
