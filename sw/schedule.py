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

In every mode a task is a SPAWN of a template where it can be. Inside a loop, a task's
template holds its constant values and adds the induction registers it uses (at most
:data:`SPAWN_OPERANDS`) to the others; the templates are defined before the loop, so the body
is a SPAWN per task plus the register updates. Tasks outside loops (all of them in ``static``)
that share a function and footprint shape share a template whose values change by at most
:data:`SPAWN_OPERANDS` different amounts from one task to the next: each task loads those
amounts into operand registers and spawns. A task that fits neither is built word by word
(SAVECTX, SAVEPC).
"""

import dataclasses

import numpy as np

from .isa import Space, NUM_REGS, FOOTPRINT_RANGES, SPAWN_OPERANDS
from .program import Reg, ZERO, AT, ARG
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
#: Operand registers of spawns outside loops.
_OPERAND_REGS = _LO_REGS[:SPAWN_OPERANDS]


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

    def with_values(self, values):
        """The task's fields (``params``, ``reads``, ``writes`` as :meth:`ProgramBuilder.define`
        takes them) with ``values`` in the order of :meth:`values`."""
        values = list(values)
        n = len(self.fn.params)
        params = dict(zip(self.fn.params, values[:n]))
        los = values[n:]
        ranges = [(sp, lo, length) for (sp, _, length), lo in zip(self.reads + self.writes, los)]
        return params, ranges[:len(self.reads)], ranges[len(self.reads):]


def emit(pb, steps, mode):
    """Emit ``steps`` (a list of lists of :class:`Task`) into ``pb`` for ``mode``. There is an
    overlay boundary after every task outside a loop and after every loop, none inside one.

    A template is defined by the first task that uses it (TPLTASK: the definition is also
    that task), so it costs no more than building that task word by word."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    steps = [list(s) for s in steps if s]
    barrier = mode == "nonepipe"
    tasks = [t for s in steps for t in s]
    templates = _Templates(pb, barrier)
    straight = _Straight(templates, tasks)
    pieces = []             # ("task", task) or ("loop", body, count, models, spawns)
    if mode == "static":
        pieces = [("task", t) for t in tasks]
    else:
        i = 0
        while i < len(steps):
            unroll, count, models = _best_loop(steps, i, pb.config.imem_words // LOOP_SHARE)
            body = [t for s in steps[i:i + unroll] for t in s]
            if count == 1:
                pieces += [("task", t) for t in body]
            else:
                regs = dict(zip(sorted({(d, p or 0) for _, d, p in models if d}), _INDUCTION))
                spawns = _loop_templates(body, models, regs, barrier, pb.config.templates)
                pieces.append(("loop", body, count, models, regs, spawns))
            i += unroll * count
    for piece in pieces:
        if piece[0] == "task":
            straight.emit(piece[1])
        else:
            _, body, count, models, regs, spawns = piece
            with pb.atomic():
                _loop(pb, body, count, models, barrier, regs, spawns, templates)
            pb.boundary()


class _Templates:
    """The templates a layer's program has defined, by definition ``(function label, params,
    reads, writes)`` with :data:`ARG` values: :meth:`get` defines one when the builder no
    longer holds it."""

    def __init__(self, pb, barrier):
        self.pb, self.barrier, self.defined = pb, barrier, {}

    def holds(self, definition):
        template = self.defined.get(definition)
        return template is not None and self.pb.holds(template)

    def issue(self, definition, fn, operands):
        """A task of ``definition`` with ``operands`` (registers): a SPAWN; or, when the
        template is not defined, its definition that is also the task (the operands must
        hold 0 then, so that the task has the template's values)."""
        if self.holds(definition):
            self.pb.spawn(self.defined[definition], *operands)
            return
        _, params, reads, writes = definition
        footprint = {} if self.barrier else dict(reads=list(reads), writes=list(writes))
        self.defined[definition] = self.pb.define(fn, task=True, **footprint, **dict(params))


def _definition(task, values):
    params, reads, writes = task.with_values(values)
    return (task.fn.label, tuple(params.items()), tuple(reads), tuple(writes))


class _Straight:
    """Tasks outside loops: those of one function and footprint shape (and at least two of
    them) share a template when their values differ from the first one's by at most
    :data:`SPAWN_OPERANDS` different amounts, field by field; the rest are built word by
    word."""

    def __init__(self, templates, tasks):
        self.templates = templates
        self.pb, self.barrier = templates.pb, templates.barrier
        self.first = True
        groups = {}
        for task in tasks:
            groups.setdefault(task.shape(), []).append(task)
        self.plans = {}         # shape -> (first task's values, field -> operand or -1)
        for shape, group in groups.items():
            if len(group) < 2:
                continue
            values = np.array([t.values() for t in group], dtype=np.int64)
            if self.barrier:        # a barrier has no footprint: only the parameters count
                values[:, len(group[0].fn.params):] = values[0, len(group[0].fn.params):]
            diffs = values - values[:1]
            columns = {}
            fields = []
            for j in range(values.shape[1]):
                if not diffs[:, j].any():
                    fields.append(-1)
                    continue
                fields.append(columns.setdefault(diffs[:, j].tobytes(), len(columns)))
            if len(columns) <= SPAWN_OPERANDS:
                self.plans[shape] = (values[0], fields)

    def definition(self, task):
        """The definition of ``task``'s template, or None when it has none."""
        plan = self.plans.get(task.shape())
        if plan is None:
            return None
        base, fields = plan
        return _definition(task, [int(b) if f < 0 else ARG[f] + int(b)
                                  for b, f in zip(base, fields)])

    def emit(self, task):
        pb = self.pb
        definition = self.definition(task)
        if definition is None:
            self.first = False
            _straight(pb, task, self.barrier)
            return
        base, fields = self.plans[task.shape()]
        if self.first:
            # The layer's first task goes out word by word: TPLTASK's one more instruction
            # would delay the whole layer.
            self.first = False
            _straight(pb, task, self.barrier)
            return
        if not self.templates.holds(definition):
            # Defined by this task: the template's values are the first task's. Any one
            # task of the group will do, with the other tasks' operands taken from it.
            base = np.array(task.values(), dtype=np.int64)
            if self.barrier:
                base[len(task.fn.params):] = self.plans[task.shape()][0][len(task.fn.params):]
            self.plans[task.shape()] = (base, fields)
            definition = self.definition(task)
            self.templates.issue(definition, task.fn, ())
            pb.boundary()
            return
        operands = [0] * (max(fields) + 1)
        for value, b, f in zip(task.values(), base, fields):
            if f >= 0:
                operands[f] = value - int(b)
        for reg, value in zip(_OPERAND_REGS, operands):
            pb.li(reg, value)
        self.templates.issue(definition, task.fn, _OPERAND_REGS[:len(operands)])
        pb.boundary()


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


def _loop(pb, body, count, models, barrier, regs, spawns, templates):
    """``count`` iterations of ``body`` (the first one's tasks); value ``k`` of the body
    follows ``models[k]``. Unless every template is already defined, the first iteration is
    peeled off: its tasks define the templates (the induction registers are 0 there, so each
    task has its template's values), at the cost of building them word by word."""
    for reg in regs.values():
        pb.li(reg, 0)
    if not all(templates.holds(sp[0]) for sp in spawns if sp):
        _iteration(pb, body, models, regs, barrier, spawns, templates)
        count -= 1
        if count == 0:
            return
        _advance(pb, regs)
    pb.li(_COUNTER, count)
    top = pb.label(pb.fresh_label("loop"))
    _iteration(pb, body, models, regs, barrier, spawns, templates)
    _advance(pb, regs)
    pb.emit(f"addi {_COUNTER}, {_COUNTER}, -1")
    pb.emit(f"bne {_COUNTER}, r0, {top}")


def _iteration(pb, body, models, regs, barrier, spawns, templates):
    """One iteration of a loop body: a SPAWN per task that has a template (``spawns``:
    ``(definition, operand registers)`` or None; ``templates`` a :class:`_Templates`), else
    the task built word by word."""
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

    for task, spawn in zip(body, spawns):
        if spawn is not None:
            definition, operands = spawn
            templates.issue(definition, task.fn, operands)
            k += len(task.values())
            continue
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


def _advance(pb, regs):
    """Move the induction and ring registers to the next iteration."""
    for (d, p), reg in regs.items():
        _add(pb, reg, reg, d)
        if p:
            wrap = pb.fresh_label("ring")
            pb.li(AT, p * d)
            pb.emit(f"bne {reg}, {AT}, {wrap}")
            pb.li(reg, 0)
            pb.label(wrap)


def _loop_templates(body, models, regs, barrier, limit):
    """For each task of a loop body that adds at most :data:`SPAWN_OPERANDS` induction
    registers to its values: ``(definition, operand registers)``, where a definition is
    ``(function label, params, reads, writes)`` with :data:`ARG` values (equal definitions
    share a template; at most ``limit`` of them). None for the other tasks."""
    out, seen = [], set()
    k = 0
    for task in body:
        n = len(task.values())
        fields = models[k:k + n]
        k += n
        if barrier:                 # a barrier has no footprint: only the parameters count
            fields = fields[:len(task.fn.params)] + [(a, 0, None) for a, _, _ in
                                                     fields[len(task.fn.params):]]
        used = []
        for _, d, p in fields:
            if d and regs[(d, p or 0)] not in used:
                used.append(regs[(d, p or 0)])
        if len(used) > SPAWN_OPERANDS:
            out.append(None)
            continue
        values = [a if not d else ARG[used.index(regs[(d, p or 0)])] + a for a, d, p in fields]
        definition = _definition(task, values)
        if definition not in seen and len(seen) == limit:
            out.append(None)
            continue
        seen.add(definition)
        out.append((definition, used))
    return out
