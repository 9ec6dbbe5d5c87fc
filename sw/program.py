"""The programming interface (paper Figs.4-6): module functions and control programs.

A *module function* is declared with the module it runs on and the names of its parameters::

    @module_function(Unit.IO, "dram_addr", "buf_addr", "rows", "row_beats",
                     "dram_stride", "buf_stride")
    def load_nbin(f, p):
        f.dload(Buf.NBIN, p.dram_addr)

Its parameters come from the task's context slot: the function starts by loading parameter
``i`` from context word ``i`` into register ``p.<name>`` (``Load.Reg.Onchip`` of Fig.6); the
parameters sit in consecutive registers, so a macro-instruction can take a block of them.

A *control program* is written with :class:`ProgramBuilder`: ``save_context`` stores a task's
parameters into the next context slot (Fig.5) and ``save_pc`` commits the task. Static
programs pass integers (emitted as immediates); dynamic ones pass :class:`Reg` values computed
at run time.

A control program larger than the instruction memory runs in overlay segments
(:mod:`.link`): the builder marks the *boundaries* where it may be cut (after every task
outside :meth:`ProgramBuilder.atomic` regions) and the linker cuts there only when it must.
"""

import contextlib
import dataclasses

from .isa import (Unit, Buf, Act, VecFn, MODULE_UNITS, NUM_REGS, MvmFlags, VecFlags, Space,
                  RangeDesc, FOOTPRINT_RANGES, OPS, Fmt, DMA_PARAMS, Operand, SPAWN_OPERANDS)
from .link import Boundary, link

__all__ = ["Reg", "module_function", "ModuleFunction", "FunctionBuilder", "ProgramBuilder",
           "mvm_flags", "vec_flags", "AT", "FOOTPRINT_REGS", "TRAMPOLINE_REGS", "Arg", "ARG",
           "Template"]


@dataclasses.dataclass(frozen=True)
class Reg:
    """A scalar register ``r<index>``."""
    index: int

    def __post_init__(self):
        if not 0 <= self.index < NUM_REGS:
            raise ValueError(f"no register r{self.index}; there are r0..r{NUM_REGS - 1}")

    def __str__(self):
        return f"r{self.index}"


@dataclasses.dataclass(frozen=True)
class Arg:
    """In a template (:meth:`ProgramBuilder.define`): SPAWN operand ``operand`` plus ``offset``,
    written ``ARG[1] + 4``."""
    operand: Operand
    offset: int = 0

    def __add__(self, k):
        return Arg(self.operand, self.offset + int(k))

    __radd__ = __add__

    def __sub__(self, k):
        return Arg(self.operand, self.offset - int(k))

    def __str__(self):
        return f"{self.operand.name.lower()}{self.offset:+d}" if self.offset else \
            self.operand.name.lower()


#: The operands of a SPAWN, in the order it names them.
ARG = tuple(Arg(Operand(i + 1)) for i in range(SPAWN_OPERANDS))


@dataclasses.dataclass(eq=False)
class Template:
    """A task template as the builder defined it: its number in the hardware table and what
    it holds. :meth:`ProgramBuilder.spawn` takes it while no later definition has reused the
    number."""
    index: int
    fn: object
    operands: int       # how many SPAWN operands it uses (the highest one named)


ZERO = Reg(0)
#: Scratch register the builders use to materialize immediates; user code should not keep
#: values in it across builder calls.
AT = Reg(1)
#: Registers :meth:`ProgramBuilder.save_pc` fills with the task's footprint.
FOOTPRINT_REGS = tuple(Reg(NUM_REGS - 2 * FOOTPRINT_RANGES + i)
                       for i in range(2 * FOOTPRINT_RANGES))
#: Registers the trampoline between two overlay segments overwrites (:mod:`.link`): the next
#: segment's DRAM word address and its length. Both are clobbered by the builders anyway.
TRAMPOLINE_REGS = (AT, FOOTPRINT_REGS[-1])


_LO = dict(RangeDesc)["lo"]
_OPERAND = dict(RangeDesc)["operand"]


def _split(value):
    """``(value, Operand)`` of a template value: an integer or register and the SPAWN operand
    it adds (NONE for plain values)."""
    if isinstance(value, Arg):
        return value.offset, value.operand
    return value, Operand.NONE


def range_desc(space, write):
    """The constant part (space, write) of a footprint range's first word."""
    value = 0
    for name, field in RangeDesc:
        v = {"lo": 0, "operand": 0, "write": int(bool(write)), "space": Space(space).value}[name]
        value |= v << field.offset
    return value


def _pack(layout, **fields):
    return sum(int(getattr(fields[name], "value", fields[name])) << field.offset
               for name, field in layout)


def mvm_flags(bias=False, act=Act.NONE, acc_in=False, acc_out=False, wshift=0):
    """The imm16 flags of :attr:`Op.MVM` and :attr:`Op.CONV`, from the :data:`MvmFlags`
    layout."""
    return _pack(MvmFlags, bias=bool(bias), act=Act(act), acc_in=bool(acc_in),
                 acc_out=bool(acc_out), wshift=int(wshift))


def vec_flags(fn, act=Act.NONE):
    """The imm16 flags of :attr:`Op.VEC`, from the :data:`VecFlags` layout."""
    return _pack(VecFlags, fn=VecFn(fn), act=Act(act))


class _Params:
    def __init__(self, names, first):
        self._regs = {name: Reg(first + i) for i, name in enumerate(names)}

    def __getattr__(self, name):
        try:
            return self._regs[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}; parameters are "
                                 f"{', '.join(self._regs)}") from None

    def __getitem__(self, name):
        return getattr(self, name)


class FunctionBuilder:
    """Emits the body of a module function; only the unit's own instructions are offered.
    ``first_free`` is the first register above the function's parameters."""

    def __init__(self, unit, first_free=2):
        self.unit = unit
        self.first_free = first_free
        self.lines = []
        self._block = {}        # scratch DMA block register -> constant it holds

    def emit(self, line):
        self._block.clear()
        self.lines.append(line)

    def li(self, reg, value):
        self.emit(_li(reg, value))

    def dload(self, buf, first, planes=False):
        """DMA load into ``buf`` with the first six :data:`DMA_PARAMS` (one plane), or with all
        nine (``planes``), in registers ``first`` ..."""
        self._need(Unit.IO, "dload")
        self.emit(f"dload{'3' if planes else ''} {Buf(buf).name.lower()}, {first}")

    def dstore(self, buf, first, planes=False):
        self._need(Unit.STORE, "dstore")
        self.emit(f"dstore{'3' if planes else ''} {Buf(buf).name.lower()}, {first}")

    def dload_span(self, buf, dram, buf_addr, beats):
        """Load ``beats`` consecutive beats from DRAM beat ``dram`` to bank beat ``buf_addr``
        (registers or integers), through a block of scratch registers above the parameters."""
        self._need(Unit.IO, "dload")
        first = self._span_block(dram, buf_addr, beats)
        self.lines.append(f"dload {Buf(buf).name.lower()}, {first}")

    def dstore_span(self, buf, dram, buf_addr, beats):
        """Store ``beats`` consecutive beats from bank beat ``buf_addr`` to DRAM beat
        ``dram``."""
        self._need(Unit.STORE, "dstore")
        first = self._span_block(dram, buf_addr, beats)
        self.lines.append(f"dstore {Buf(buf).name.lower()}, {first}")

    def _span_block(self, dram, buf_addr, beats):
        first = self.first_free
        names = DMA_PARAMS[:6]                       # one plane: DLOAD / DSTORE read six
        if first + len(names) > NUM_REGS:
            raise ValueError(f"no room for a DMA parameter block above r{first - 1}")
        values = {"dram_addr": dram, "buf_addr": buf_addr, "row_beats": beats, "rows": 1,
                  "dram_stride": 0, "buf_stride": 0}
        for i, name in enumerate(names):
            reg, value = Reg(first + i), values[name]
            if isinstance(value, Reg):
                self.lines.append(f"addi {reg}, {value}, 0")
                self._block.pop(reg, None)
            elif self._block.get(reg) != int(value):
                self.lines.append(_li(reg, value))
                self._block[reg] = int(value)
        return Reg(first)

    def mvm(self, first, *, bias=False, act=Act.NONE, acc_in=False, acc_out=False, wshift=0):
        self._need(Unit.PFU, "mvm")
        self.emit(f"mvm {first}, {mvm_flags(bias, act, acc_in, acc_out, wshift)}")

    def conv(self, first, *, bias=False, act=Act.NONE, wshift=0):
        self._need(Unit.PFU, "conv")
        self.emit(f"conv {first}, {mvm_flags(bias, act, wshift=wshift)}")

    def vec(self, first, fn, act=Act.NONE):
        self._need(Unit.PFU, "vec")
        self.emit(f"vec {first}, {vec_flags(fn, act)}")

    def _need(self, unit, what):
        if self.unit != unit:
            raise ValueError(f"{what} runs on the {unit.name} module, not {self.unit.name}")


@dataclasses.dataclass(frozen=True)
class ModuleFunction:
    unit: Unit
    name: str
    params: tuple
    body: object

    @property
    def label(self):
        return f"fn_{self.name}"

    def asm(self):
        """The function's assembly: parameter loads, body, ``end``."""
        first = 2      # r1 is the scratch register
        f = FunctionBuilder(self.unit, first + len(self.params))
        if first + len(self.params) > NUM_REGS:
            raise ValueError(f"{self.name}: {len(self.params)} parameters do not fit the "
                             f"registers")
        lines = [f"{self.label}:"]
        lines += [f"    ldc r{first + i}, {i}    # {name}" for i, name in enumerate(self.params)]
        self.body(f, _Params(self.params, first))
        lines += [f"    {line}" for line in f.lines]
        lines.append("    end")
        return lines


def module_function(unit, *params, name=None):
    """Decorator: declare a module function running on ``unit`` (IO, PFU or STORE) whose
    parameters ``params`` come from context words 0, 1, ... of its task."""
    unit = Unit(unit)
    if unit not in MODULE_UNITS:
        raise ValueError(f"module functions run on {', '.join(u.name for u in MODULE_UNITS)}, "
                         f"not {unit.name}")
    if len(set(params)) != len(params):
        raise ValueError(f"duplicate parameter names in {params}")

    def wrap(body):
        return ModuleFunction(unit, name or body.__name__, tuple(params), body)
    return wrap


#: mnemonic -> whether it writes its first operand (False: writes no register).
_WRITES_FIRST = {op.name.lower(): fmt in (Fmt.R, Fmt.I, Fmt.IU, Fmt.LI, Fmt.LUI, Fmt.LOAD, Fmt.JAL)
                 for op, (fmt, _) in OPS.items()}
_WRITES_FIRST.update({"li32": True, "mv": True, "j": False})


def _parse_reg(token):
    return Reg(int(token[1:])) if token[:1] in "rR" and token[1:].isdigit() else None


def _li(reg, value):
    """Load an integer (li or li32) or copy a register."""
    if isinstance(value, Reg):
        return f"addi {reg}, {value}, 0"
    value = int(value)
    if -(1 << 20) <= value < (1 << 20):
        return f"li {reg}, {value}"
    if not -(1 << 31) <= value < (1 << 32):
        raise ValueError(f"{value} does not fit 32 bits")
    return f"li32 {reg}, {value}"


class ProgramBuilder:
    """Builds a control program plus the module functions it uses.

    Members
    -------
    config : Config
    """

    def __init__(self, config):
        self.config = config
        self.lines = []
        self.functions = {}
        self._labels = 0
        # Registers whose value is known here (straight-line code since the last label or
        # opaque instruction): li of a known value emits nothing.
        self._known = {}
        self._boundaries = []
        self._atomic = 0
        # Template numbers, least recently used first, and what each holds now.
        self._tpl_order = list(range(config.templates))
        self._tpl = {}

    # -- plain assembly ----------------------------------------------------------------------

    def emit(self, line):
        """Add an instruction. Known register values survive it unless it writes them (the
        written register is read off the instruction's format in :data:`OPS`)."""
        mnemonic, _, operands = line.strip().partition(" ")
        first = operands.split(",")[0].split("#")[0].strip()
        written = _WRITES_FIRST.get(mnemonic.lower())
        if written is None:
            self._known.clear()              # unknown effect
        elif written:
            self._known.pop(_parse_reg(first), None)
        self.lines.append(f"    {line}")

    def _emit_keeping(self, line, writes=None):
        """Add an instruction that changes no register (savectx, savepc, wait, halt) or only
        ``writes``."""
        self._known.pop(writes, None)
        self.lines.append(f"    {line}")

    def label(self, name=None):
        """Define a label here (a fresh one if ``name`` is None) and return its name."""
        if name is None:
            name = self.fresh_label()
        self._known.clear()
        self.lines.append(f"{name}:")
        return name

    def fresh_label(self, stem="L"):
        self._labels += 1
        return f".{stem}{self._labels}"

    def li(self, reg, value):
        """``reg = value`` (an integer or a register)."""
        if isinstance(value, Reg):
            self.emit(_li(reg, value))
            return
        value = int(value)
        if self._known.get(reg) == value or reg == ZERO:
            return
        line = _li(reg, value)
        self._known.pop(reg, None)
        self.lines.append(f"    {line}")
        self._known[reg] = value

    def value(self, value):
        """A register holding ``value``: the register itself, or AT loaded with an integer."""
        if isinstance(value, Reg):
            return value
        self.li(AT, value)
        return AT

    # -- tasks -------------------------------------------------------------------------------

    def save_context(self, fn, **params):
        """SaveContext: store parameters of ``fn`` (integers or registers) into the context
        slot of the next task. Every parameter must be given."""
        self._check_params(fn, params)
        for offset, name in enumerate(fn.params):
            value = params[name]
            reg = ZERO if (not isinstance(value, Reg) and int(value) == 0) else self.value(value)
            self._emit_keeping(f"savectx {reg}, {offset}    # {fn.name}.{name}")

    def _check_params(self, fn, params):
        """Every parameter of ``fn`` given, no other, and the context fits a slot."""
        missing = [p for p in fn.params if p not in params]
        extra = [p for p in params if p not in fn.params]
        if missing or extra:
            raise ValueError(f"{fn.name} takes ({', '.join(fn.params)}); missing {missing}, "
                             f"unknown {extra}")
        if len(fn.params) > self.config.ctx_slot_words:
            raise ValueError(f"{fn.name} has {len(fn.params)} parameters, a context slot "
                             f"holds {self.config.ctx_slot_words} words")

    def savectx(self, reg, offset, note=""):
        """One SaveContext word: context word ``offset`` of the next task = ``reg``."""
        self._emit_keeping(f"savectx {reg}, {offset}" + (f"    # {note}" if note else ""))

    def save_pc(self, fn, *, reads=None, writes=None):
        """SavePC: commit a task running ``fn`` with the context saved since the last one.

        ``reads`` and ``writes`` are the task's footprint: lists of ``(space, first_beat,
        beats)`` with :class:`Space` spaces and integer or register addresses, at most
        :data:`FOOTPRINT_RANGES` in all. With neither, the task is a barrier: it waits for every
        older task and every younger one waits for it."""
        self._register(fn)
        if reads is None and writes is None:
            self._emit_keeping(f"savepc {fn.unit.name.lower()}, r0, {fn.label}")
            return
        self._footprint(fn, reads, writes)
        self._emit_keeping(f"savepc {fn.unit.name.lower()}, {FOOTPRINT_REGS[0]}, {fn.label}")

    def _footprint(self, fn, reads, writes):
        """Load the footprint registers; returns the highest SPAWN operand a range names."""
        ranges = [(sp, lo, n, False) for sp, lo, n in reads or ()]
        ranges += [(sp, lo, n, True) for sp, lo, n in writes or ()]
        if len(ranges) > FOOTPRINT_RANGES:
            raise ValueError(f"{fn.name}: {len(ranges)} footprint ranges, a task record holds "
                             f"{FOOTPRINT_RANGES}")
        used = 0
        for i in range(FOOTPRINT_RANGES):
            desc, length = FOOTPRINT_REGS[2 * i], FOOTPRINT_REGS[2 * i + 1]
            if i >= len(ranges):
                self.li(desc, 0)
                continue
            space, lo, n, write = ranges[i]
            lo, operand = _split(lo)
            used = max(used, operand.value)
            const = range_desc(space, write) | operand.value << _OPERAND.offset
            if isinstance(lo, Reg):
                self.emit(f"slli {desc}, {lo}, {_LO.offset}")
                if const < (1 << 16):
                    self.emit(f"ori {desc}, {desc}, {const}")
                else:
                    self.li(AT, const)
                    self.emit(f"or {desc}, {desc}, {AT}")
            else:
                # A template's start is signed: the SPAWN operand added to it may be larger.
                low = -(1 << (_LO.width - 1)) if operand != Operand.NONE else 0
                high = (1 << (_LO.width - 1)) if operand != Operand.NONE else 1 << _LO.width
                if not low <= lo < high:
                    raise ValueError(f"{fn.name}: footprint address {lo} out of range "
                                     f"({low}..{high - 1})")
                self.li(desc, const | (lo & ((1 << _LO.width) - 1)) << _LO.offset)
            self.li(length, n)
        return used

    # -- templates ---------------------------------------------------------------------------

    def define(self, fn, *, reads=None, writes=None, task=False, **params):
        """Define a task template: ``fn`` with its parameters and footprint (as for
        :meth:`task`), where a value may also be ``ARG[i] + k``: the ``i``-th register of each
        :meth:`spawn` plus ``k``. Takes the least recently used template number (a later
        definition may reuse it: define before the spawns on every path through the program,
        and not inside a loop that spawns an older template). Returns the :class:`Template`.

        With ``task``, the definition also commits a task with the template's own values
        (``ARG[i] + k`` counts as ``k``), for the cost of building that task word by word."""
        self._register(fn)
        self._check_params(fn, params)
        index = self._tpl_order.pop(0)
        self._tpl_order.append(index)
        used = 0
        self._emit_keeping(f"{'tpltask' if task else 'tpl'} {index}    # {fn.name}")
        for offset, name in enumerate(fn.params):
            value, operand = _split(params[name])
            used = max(used, operand.value)
            reg = value if isinstance(value, Reg) else ZERO if value == 0 else self.value(value)
            self._emit_keeping(f"tplctx {reg}, {offset}, {operand.name.lower()}    "
                               f"# {fn.name}.{name}")
        barrier = reads is None and writes is None
        if not barrier:
            used = max(used, self._footprint(fn, reads, writes))
        base = "r0" if barrier else FOOTPRINT_REGS[0]
        self._emit_keeping(f"tplpc {fn.unit.name.lower()}, {base}, {fn.label}")
        template = Template(index, fn, used)
        self._tpl[index] = template
        return template

    def holds(self, template):
        """Whether ``template`` is still defined (no later definition took its number)."""
        return self._tpl.get(template.index) is template

    def spawn(self, template, *regs):
        """SPAWN: commit a task from ``template`` with operand registers ``regs`` (``ARG[0]``
        first; the template's unused operands may be left out)."""
        if not self.holds(template):
            raise ValueError(f"template {template.index} ({template.fn.name}) was replaced by a "
                             f"later definition; define it again before spawning")
        if len(regs) > SPAWN_OPERANDS or len(regs) < template.operands:
            raise ValueError(f"{template.fn.name}: a spawn takes {template.operands}.."
                             f"{SPAWN_OPERANDS} operand registers, got {len(regs)}")
        if not all(isinstance(r, Reg) for r in regs):
            raise ValueError(f"spawn operands must be registers, got {regs}")
        self._tpl_order.remove(template.index)
        self._tpl_order.append(template.index)
        names = [str(r) for r in regs] + ["r0"] * (SPAWN_OPERANDS - len(regs))
        self._emit_keeping(f"spawn {template.index}, {', '.join(names)}    # {template.fn.name}")

    def task(self, fn, *, reads=None, writes=None, **params):
        """``save_context`` then ``save_pc``, then a :meth:`boundary`."""
        self.save_context(fn, **params)
        self.save_pc(fn, reads=reads, writes=writes)
        self.boundary()

    # -- overlay boundaries ------------------------------------------------------------------

    def boundary(self):
        """Mark the point here as one where the linker may cut the control program into
        overlay segments (it only does when the program does not fit the instruction memory).
        No branch may cross a boundary. Registers carry over it, except :data:`AT` and
        ``FOOTPRINT_REGS[-1]`` (:data:`TRAMPOLINE_REGS`); the segment after a cut reloads the
        values the builder relies on them holding. Does nothing inside :meth:`atomic`."""
        if self._atomic:
            return
        restore = tuple(_li(reg, self._known[reg]) for reg in TRAMPOLINE_REGS
                        if reg in self._known)
        if self._boundaries and self._boundaries[-1].line == len(self.lines):
            self._boundaries.pop()
        self._boundaries.append(Boundary(len(self.lines), restore))

    @contextlib.contextmanager
    def atomic(self):
        """``with pb.atomic():`` keeps the code emitted inside in one overlay segment:
        :meth:`boundary` does nothing there. Wrap every run-time branch or loop whose code
        contains tasks in it. Regions nest."""
        self._atomic += 1
        try:
            yield
        finally:
            self._atomic -= 1

    def wait(self, at_most=0):
        """WAIT until every committed task has finished, or (WAITN) until at most ``at_most``
        of them are unfinished: the tasks committed since, say, while older ones finish."""
        self._emit_keeping("wait" if not at_most else f"waitn {int(at_most)}")

    def halt(self):
        self._emit_keeping("halt")

    def _register(self, fn):
        known = self.functions.get(fn.label)
        if known is not None and known is not fn:
            raise ValueError(f"two module functions are called {fn.name!r}")
        self.functions[fn.label] = fn

    # -- output ------------------------------------------------------------------------------

    def _function_lines(self):
        return [line for fn in self.functions.values() for line in fn.asm()]

    def text(self):
        """The assembly text: the control program, then the module functions it uses."""
        return "\n".join(self.lines + self._function_lines()) + "\n"

    def assemble(self, filename="<program>", *, image=None):
        """The :class:`~dypipe.sw.asm.Program`: :meth:`text` assembled when it fits the
        instruction memory; else linked into overlay segments (:func:`~dypipe.sw.link.link`),
        which are allocated in ``image`` (a :class:`~dypipe.sw.image.DramImage`, after every
        tensor). Raises :class:`~dypipe.sw.asm.AsmError` naming the line when the program
        cannot be assembled or split."""
        return link(self.lines, self._function_lines(), self._boundaries, self.config,
                    scratch=TRAMPOLINE_REGS, image=image, filename=filename)
