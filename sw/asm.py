"""Assembler and disassembler for the DyPipe ISA v1.

Every encoding comes from :mod:`dypipe.sw.isa`: mnemonics are the lowercased :class:`Op` names
in :data:`OPS`, operands follow the instruction's :class:`Fmt`, and words are packed with
:func:`encode` and unpacked with :func:`decode`.

Syntax, one statement per line::

    # a comment; so is everything after ';'
            .equ  ROWS, 16          # a named integer constant
    start:  li    r2, ROWS          # a label, alone on its line or before a statement
    loop:   addi  r2, r2, -1
            bne   r2, r0, loop      # labels may be used before or after their definition
            savepc pfu, r24, fn_mvm
            .word 0xdeadbeef        # a raw 32-bit word

* Mnemonics, directives, registers and the names of units, buffers and flags are
  case-insensitive; labels and constants are case-sensitive names ``[A-Za-z_.][A-Za-z0-9_.]*``
  (except ``.``) and share one namespace.
* Integers are decimal, ``0x`` hex or ``0b`` binary with an optional ``-``, or a ``.equ``
  constant. Instructions may use constants defined later; a ``.equ`` value may only use
  constants defined above it.
* Operands by format (``rd``, ``ra``, ``rb``, ``rs`` are registers ``r0`` .. ``r31``)::

    halt                        NONE   (also nop, wait, end)
    add     rd, ra, rb          R
    addi    rd, ra, simm16      I      (also slti, jalr)
    ori     rd, ra, uimm16      IU     (slli, srli, srai take a shift amount 0..31)
    li      rd, simm21          LI
    lui     rd, uimm16          LUI
    lw      rd, simm16(ra)      LOAD   (``(ra)`` means ``0(ra)``)
    sw      rs, simm16(ra)      STORE
    beq     ra, rb, target      BRANCH (imm16 = target - pc)
    jal     rd, target          JAL    (imm21 = target - pc)
    savectx rs, uimm16          CTX
    ldc     rd, uimm16          LDC
    savepc  unit, rb, target    TASK   unit io, pfu or store; imm16 = target, absolute
                                       (also tplpc)
    tpl     template            TMPL   a template number 0..63 (also tpltask)
    waitn   count               COUNT  a number of tasks 0..65535
    tplctx  rs, offset, operand TPLCTX operand none, a, b, c or d
    spawn   template, ra, rb, rc, rd   SPAWN
    overlay ra, rb, dest        OVERLAY  imm16 = dest, absolute (also prefetch)
    enter   dest                DEST   imm16 = dest, absolute
    dload   buf, rs             DMA    buf nbin, sb or nbout (also dstore, dload3, dstore3)
    mvm     rs, flags           MVM    flags: names joined by '|' (bias, none, relu, sigmoid,
                                       tanh), integers (also conv)
    vec     rs, vflags          VEC    vflags: a function (max, avg, add, mul, copy) and an
                                       activation joined by '|', integers

* A target is a label, an integer (an absolute pc), or ``.``, ``.+N``, ``.-N``: the pc of the
  instruction itself plus or minus N.
* Pseudo-instructions, always the same size: ``li32 rd, value`` (any 32-bit value, signed or
  unsigned) is ``lui`` + ``ori`` (2 words); ``j target`` is ``jal r0, target``; ``mv rd, ra``
  is ``addi rd, ra, 0``.
* Directives: ``.word value`` (``-2**31 .. 2**32 - 1``), ``.equ name, value``.
"""

import dataclasses
import enum
import functools
import re
from typing import Callable, NamedTuple

from .isa import (Op, Fmt, OPS, FIELDS, INSN_BITS, NUM_REGS, Buf, MODULE_UNITS, MvmFlags,
                  VecFlags, Operand, encode, decode, sext)

__all__ = ["AsmError", "Program", "assemble", "disassemble", "disassemble_word"]

#: Width of a register, a DRAM word and a ``.word``: the instruction width.
_XLEN = INSN_BITS

_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")
_LABEL_DEF = re.compile(r"\s*([^\s:]+)\s*:")
_INT = re.compile(r"-?(0x[0-9a-f]+|0b[01]+|[0-9]+)", re.I)
_REG = re.compile(r"r([0-9]+)", re.I)
_MEM = re.compile(r"(.*)\((.*)\)")
_HERE = re.compile(r"\.\s*(?:([+-])\s*(.+))?")


class AsmError(ValueError):
    """An error in assembly source, at ``filename:line`` (1-based).

    Members
    -------
    filename, line, message
    undefined : str or None
        The label, when the error is a reference to a label the text does not define.
    """

    def __init__(self, filename, line, message, undefined=None):
        super().__init__(f"{filename}:{line}: {message}")
        self.filename = filename
        self.line = line
        self.message = message
        self.undefined = undefined


@dataclasses.dataclass(frozen=True)
class Program:
    """An assembled program: ``words[i]`` is the instruction at pc ``origin + i``, ``labels``
    maps each label to its pc and ``lines[i]`` is the source line word ``i`` came from.

    A program linked with overlays (:mod:`dypipe.sw.link`) holds in ``words`` what the boot
    loads from pc 0, in ``windows`` the first pc of each overlay window, and in ``overlays``
    the segments that PREFETCH loads into the windows at run time (each an
    :class:`~dypipe.sw.link.Overlay`: a DRAM region and a program whose ``origin`` is its
    window)."""
    words: list
    labels: dict
    lines: list
    origin: int = 0
    overlays: tuple = ()
    windows: tuple = ()

    @property
    def window(self):
        """The first pc of the overlay windows, or None without overlays."""
        return self.windows[0] if self.windows else None

    def word_at(self, pc):
        """The instruction at ``pc`` as booted, or None when the program has none there or
        when several overlay segments take turns there."""
        if self.windows and pc >= self.window:
            return None
        i = pc - self.origin
        return self.words[i] if 0 <= i < len(self.words) else None

    def to_bytes(self):
        """The words as little-endian bytes, one instruction after the other."""
        return b"".join(word.to_bytes(INSN_BITS // 8, "little") for word in self.words)


def _mask(bits):
    return (1 << bits) - 1


# -- operand kinds ---------------------------------------------------------------------------

class _Kind:
    """One operand. ``parse(asm, text)`` returns the values of :attr:`fields`; ``show(values,
    pc, names)`` prints them back, or returns None when the assembler could not read them."""

    def __init__(self, *fields):
        self.fields = fields


class _Reg(_Kind):
    what = f"a register r0..r{NUM_REGS - 1}"

    def parse(self, asm, text):
        m = _REG.fullmatch(text)
        if m is None or int(m[1]) >= NUM_REGS:
            asm.expected(self.what, text)
        return (int(m[1]),)

    def show(self, values, pc, names):
        return f"r{values[0]}"


class _Imm(_Kind):
    """An integer in ``lo..hi``, called ``name`` in messages."""

    def __init__(self, field, lo, hi, name, noun="immediate"):
        super().__init__(field)
        self.lo, self.hi, self.name, self.noun = lo, hi, name, noun
        self.what = f"an integer ({name})"

    def parse(self, asm, text):
        return (self.check(asm, asm.integer(text, self.what), self.noun),)

    def check(self, asm, value, noun):
        if not self.lo <= value <= self.hi:
            asm.fail(f"{noun} {value} does not fit {self.name} ({self.lo}..{self.hi}) "
                     f"in {asm.where}")
        return value

    def show(self, values, pc, names):
        value = sext(values[0], FIELDS[self.fields[0]][1]) if self.lo < 0 else values[0]
        return str(value) if self.lo <= value <= self.hi else None


def _simm(field):
    bits = FIELDS[field][1]
    return _Imm(field, -(1 << (bits - 1)), _mask(bits - 1), f"s{field}")


def _uimm(field):
    return _Imm(field, 0, _mask(FIELDS[field][1]), f"u{field}")


class _Target(_Kind):
    """A pc, encoded relative to the instruction's own pc or absolute."""
    what = "a label or pc"

    def __init__(self, field, relative):
        super().__init__(field)
        self.relative = relative
        self.range = _simm(field) if relative else _uimm(field)

    def parse(self, asm, text):
        target = asm.target(text)
        if self.relative:
            return (self.range.check(asm, target - asm.pc, "offset"),)
        return (self.range.check(asm, target, "target pc"),)

    def absolute(self, values, pc):
        """The target pc, or None when it is relative and ``pc`` is unknown."""
        if not self.relative:
            return values[0]
        return None if pc is None else pc + sext(values[0], FIELDS[self.fields[0]][1])

    def show(self, values, pc, names):
        target = self.absolute(values, pc)
        if target in names:
            return names[target]
        if target is not None and target >= 0:
            return str(target)
        offset = sext(values[0], FIELDS[self.fields[0]][1])
        return f".{offset:+d}" if offset else "."


class _Mem(_Kind):
    """``offset(register)``."""

    def __init__(self, imm, reg):
        super().__init__(imm, reg)
        self.imm, self.reg = _simm(imm), _Reg(reg)
        self.what = f"an address {self.imm.name}(ra)"

    def parse(self, asm, text):
        m = _MEM.fullmatch(text)
        if m is None:
            asm.expected(self.what, text)
        offset = self.imm.parse(asm, m[1].strip()) if m[1].strip() else (0,)
        return offset + self.reg.parse(asm, m[2].strip())

    def show(self, values, pc, names):
        return f"{self.imm.show(values[:1], pc, names)}({self.reg.show(values[1:], pc, names)})"


class _Name(_Kind):
    """One of the enum ``members``, by lowercased name."""

    def __init__(self, field, noun, members):
        super().__init__(field)
        self.values = {member.name.lower(): member.value for member in members}
        self.what = f"{noun} {'/'.join(self.values)}"

    def parse(self, asm, text):
        if text.lower() not in self.values:
            asm.expected(self.what, text)
        return (self.values[text.lower()],)

    def show(self, values, pc, names):
        return next((name for name, v in self.values.items() if v == values[0]), None)


class _Flags(_Kind):
    """Flags laid out by ``layout`` (:data:`MvmFlags`, :data:`VecFlags`): ``|``-separated
    items, each a 1-bit field's name, a lowercased member of an enum field, ``name=N`` for a
    wider integer field, or an integer; the items are or-ed together."""

    def __init__(self, field, layout):
        super().__init__(field)
        self.range = _uimm(field)
        self.layout = layout
        self.names = {}     # item -> (layout field, value)
        self.numbers = []   # wider integer fields, written name=N
        for name, layout_field in layout:
            if isinstance(layout_field.shape, enum.EnumMeta):
                self.names.update({m.name.lower(): (name, m.value) for m in layout_field.shape})
            elif layout_field.width == 1:
                self.names[name] = (name, 1)
            else:
                self.numbers.append(name)
        items = list(self.names) + [f"{n}=N" for n in self.numbers]
        self.what = f"flags ({'|'.join(items)} or an integer)"

    def _pack(self, items):
        return sum(v << self.layout[name].offset for name, v in (self.names[i] for i in items))

    def _number(self, asm, item):
        """``(field, value)`` of a ``name=N`` item, or None."""
        name, eq, number = item.partition("=")
        if not eq or name.strip().lower() not in self.numbers:
            return None
        name = name.strip().lower()
        value = asm.integer(number.strip(), f"an integer for {name}")
        if not 0 <= value <= _mask(self.layout[name].width):
            asm.fail(f"{name}={value} does not fit {self.layout[name].width} bits in "
                     f"{asm.where}")
        return name, value

    def parse(self, asm, text):
        value, given = 0, {}
        for item in (item.strip() for item in text.split("|")):
            number = self._number(asm, item)
            if number is None and item.lower() not in self.names:
                value |= asm.integer(item, self.what)
                continue
            name = number[0] if number else self.names[item.lower()][0]
            if name in given:
                asm.fail(f"flags give {name} twice ('{given[name]}', '{item}') in {asm.where}")
            given[name] = item
            value |= (number[1] << self.layout[name].offset if number
                      else self._pack([item.lower()]))
        return (self.range.check(asm, value, "flags"),)

    def show(self, values, pc, names):
        value = values[0]
        items = [item for item, (name, v) in self.names.items()
                 if v and (value >> self.layout[name].offset) & _mask(self.layout[name].width)
                 == v]
        known = self._pack(items)
        for name in self.numbers:
            n = (value >> self.layout[name].offset) & _mask(self.layout[name].width)
            if n:
                items.append(f"{name}={n}")
                known |= n << self.layout[name].offset
        return "|".join(items) if items and known == value else str(value)


# -- statements ------------------------------------------------------------------------------

#: TPL's template number: the range SPAWN can name.
_TEMPLATE = _Imm("imm16", 0, _mask(FIELDS["tmpl"][1]), "a template number", "template")

_FORMATS = {
    Fmt.NONE: (),
    Fmt.R: (_Reg("a"), _Reg("b"), _Reg("c")),
    Fmt.I: (_Reg("a"), _Reg("b"), _simm("imm16")),
    Fmt.IU: (_Reg("a"), _Reg("b"), _uimm("imm16")),
    Fmt.LI: (_Reg("a"), _simm("imm21")),
    Fmt.LUI: (_Reg("a"), _uimm("imm16")),
    Fmt.LOAD: (_Reg("a"), _Mem("imm16", "b")),
    Fmt.STORE: (_Reg("a"), _Mem("imm16", "b")),
    Fmt.BRANCH: (_Reg("a"), _Reg("b"), _Target("imm16", relative=True)),
    Fmt.JAL: (_Reg("a"), _Target("imm21", relative=True)),
    Fmt.CTX: (_Reg("a"), _uimm("imm16")),
    Fmt.LDC: (_Reg("a"), _uimm("imm16")),
    Fmt.TASK: (_Name("a", "a unit", MODULE_UNITS), _Reg("b"), _Target("imm16", relative=False)),
    Fmt.OVERLAY: (_Reg("a"), _Reg("b"), _Target("imm16", relative=False)),
    Fmt.DEST: (_Target("imm16", relative=False),),
    Fmt.TMPL: (_TEMPLATE,),
    Fmt.COUNT: (_uimm("imm16"),),
    Fmt.TPLCTX: (_Reg("a"), _uimm("off"), _Name("c", "an operand", Operand)),
    Fmt.SPAWN: (_Imm("tmpl", 0, _mask(FIELDS["tmpl"][1]), "a template number", "template"),
                _Reg("a"), _Reg("b"), _Reg("c"), _Reg("d")),
    Fmt.DMA: (_Name("a", "a buffer", Buf), _Reg("b")),
    Fmt.MVM: (_Reg("b"), _Flags("imm16", MvmFlags)),
    Fmt.VEC: (_Reg("b"), _Flags("imm16", VecFlags)),
}
_SHIFTS = (Op.SLLI, Op.SRLI, Op.SRAI)
_SHAMT = _Imm("imm16", 0, _XLEN - 1, "shamt", noun="shift amount")
_VALUE = _Imm("value", -(1 << (_XLEN - 1)), _mask(_XLEN), f"{_XLEN} bits", noun="value")


class _Statement(NamedTuple):
    syntax: str         # the operands, for messages
    kinds: tuple        # of _Kind
    build: Callable     # field values -> words
    size: int = 1       # words


def _encode_op(op, fields):
    return [encode(op, **fields)]


def _statement(op):
    fmt = OPS[op][0]
    syntax, kinds = ("" if fmt is Fmt.NONE else fmt.value), _FORMATS[fmt]
    if op in _SHIFTS:
        syntax, kinds = "rd, ra, shamt", kinds[:-1] + (_SHAMT,)
    return _Statement(syntax, kinds, functools.partial(_encode_op, op))


def _li32(fields):
    bits = FIELDS["imm16"][1]
    rd, value = fields["a"], fields["value"] & _mask(_XLEN)
    return [encode(Op.LUI, a=rd, imm16=value >> bits),
            encode(Op.ORI, a=rd, b=rd, imm16=value & _mask(bits))]


_OP_STATEMENTS = {op: _statement(op) for op in OPS}
_STATEMENTS = {op.name.lower(): statement for op, statement in _OP_STATEMENTS.items()}
_STATEMENTS.update({
    ".word": _Statement("value", (_VALUE,), lambda f: [f["value"] & _mask(_XLEN)]),
    "li32": _Statement("rd, value", (_Reg("a"), _VALUE), _li32, size=2),
    "j": _Statement("target", _FORMATS[Fmt.JAL][1:], lambda f: [encode(Op.JAL, a=0, **f)]),
    "mv": _Statement("rd, ra", _FORMATS[Fmt.I][:2], lambda f: [encode(Op.ADDI, imm16=0, **f)]),
})


# -- assembler -------------------------------------------------------------------------------

class _Assembler:
    """Symbols and the position (line, pc, operand) that messages refer to."""

    def __init__(self, filename, origin=0, externs=None):
        self.filename = filename
        self.labels, self.consts, self.defined = {}, {}, {}
        self.externs = dict(externs or {})
        self.line, self.pc = 0, origin
        self.where = ""

    def fail(self, message):
        raise AsmError(self.filename, self.line, message)

    def expected(self, what, text):
        self.fail(f"expected {what} as {self.where}, got '{text}'")

    def check_count(self, mnemonic, syntax, texts):
        n = len(syntax.split(", ")) if syntax else 0
        if len(texts) != n:
            takes = f"{n} operand{'s' * (n != 1)} ({syntax})" if n else "no operands"
            self.fail(f"'{mnemonic}' takes {takes}, got {len(texts)}")

    def define(self, table, kind, name, value):
        if name == "." or not _NAME.fullmatch(name):
            self.fail(f"invalid {kind} name '{name}' (expected [A-Za-z_.][A-Za-z0-9_.]*)")
        if name in self.defined:
            self.fail(f"duplicate {kind} '{name}' (first defined at line {self.defined[name]})")
        self.defined[name] = self.line
        table[name] = value

    def integer(self, text, what="an integer"):
        if _INT.fullmatch(text):
            digits = text.lstrip("-").lower()
            value = int(digits, {"0x": 16, "0b": 2}.get(digits[:2], 10))
            return -value if text.startswith("-") else value
        if text in self.consts:
            return self.consts[text]
        return self.expected(what, text)

    def target(self, text):
        if text in self.labels:
            return self.labels[text]
        if text in self.externs:
            return self.externs[text]
        here = _HERE.fullmatch(text)
        if here:
            offset = self.integer(here[2].strip()) if here[1] else 0
            return self.pc + (-offset if here[1] == "-" else offset)
        if _INT.fullmatch(text) or text in self.consts:
            return self.integer(text)
        if _NAME.fullmatch(text):
            raise AsmError(self.filename, self.line, f"undefined label '{text}'", undefined=text)
        return self.expected(_Target.what, text)

    def operands(self, mnemonic, statement, texts):
        """The field values of ``statement`` from its operand texts."""
        self.check_count(mnemonic, statement.syntax, texts)
        fields = {}
        for i, (kind, text) in enumerate(zip(statement.kinds, texts), 1):
            self.where = f"operand {i} of '{mnemonic}'"
            fields.update(zip(kind.fields, kind.parse(self, text)))
        return fields


def assemble(text, filename="<asm>", *, origin=0, first_line=1, externs=None):
    """Assemble ``text`` (the syntax of this module's docstring) into a :class:`Program`.
    Raises :class:`AsmError` at the first error, naming ``filename`` and the line.

    For a piece of a larger program (the linker's segments): ``origin`` is the pc of the first
    word, ``first_line`` the line number of the text's first line, and ``externs`` maps labels
    defined elsewhere to their pcs (the text's own labels take precedence)."""
    asm = _Assembler(filename, origin, externs)
    statements = []     # (line, pc, mnemonic, operand texts), pass 2 encodes them
    for line, source in enumerate(text.splitlines(), first_line):
        asm.line = line
        rest = re.split("[#;]", source, maxsplit=1)[0]
        while label := _LABEL_DEF.match(rest):
            asm.define(asm.labels, "label", label[1], asm.pc)
            rest = rest[label.end():]
        if not rest.strip():
            continue
        mnemonic, operands = (rest.split(None, 1) + [""])[:2]
        texts = [t.strip() for t in operands.split(",")] if operands.strip() else []
        if mnemonic.lower() == ".equ":
            asm.check_count(".equ", "name, value", texts)
            asm.where = "operand 2 of '.equ'"
            asm.define(asm.consts, "constant", texts[0], asm.integer(texts[1]))
        elif mnemonic.lower() in _STATEMENTS:
            statements.append((line, asm.pc, mnemonic.lower(), texts))
            asm.pc += _STATEMENTS[mnemonic.lower()].size
        else:
            asm.fail(f"unknown mnemonic '{mnemonic}'")
    words, lines = [], []
    for asm.line, asm.pc, mnemonic, texts in statements:
        statement = _STATEMENTS[mnemonic]
        new = statement.build(asm.operands(mnemonic, statement, texts))
        words += new
        lines += [asm.line] * len(new)
    return Program(words, dict(asm.labels), lines, origin)


# -- disassembler ----------------------------------------------------------------------------

def _field_mask(name):
    lsb, width = FIELDS[name]
    return _mask(width) << lsb


def _decode(word):
    """``(op, [(kind, values), ...])`` when the assembler can write ``word`` as an
    instruction: a known opcode, zero in the bits its format does not use, and operands the
    assembler accepts. None otherwise."""
    fields = decode(word)
    statement = _OP_STATEMENTS.get(fields["op"])
    if statement is None:
        return None
    used = functools.reduce(int.__or__, (_field_mask(f) for k in statement.kinds
                                         for f in k.fields), _field_mask("op"))
    operands = [(kind, tuple(fields[f] for f in kind.fields)) for kind in statement.kinds]
    if word & ~used or any(kind.show(values, None, {}) is None for kind, values in operands):
        return None
    return fields["op"], operands


def _show(word, pc, names):
    insn = _decode(word)
    if insn is None:
        return f".word 0x{word:08x}"
    op, operands = insn
    text = ", ".join(kind.show(values, pc, names) for kind, values in operands)
    return f"{op.name.lower():<7} {text}".rstrip()


def disassemble_word(word, pc=None):
    """``word`` as one line of assembly, ``.word 0x...`` when it is no instruction the
    assembler writes. Targets print as absolute pcs when ``pc`` is known, else as ``.+N``."""
    return _show(word, pc, {})


def disassemble(words, labels=None):
    """Assembly text for ``words`` (32-bit), one instruction per line, that assembles back to
    the same words. Branch, jump and task targets inside the program (``0..len(words)``) print
    as labels: the names of ``labels`` (name -> pc) where given, else ``L<pc>``."""
    words = list(words)
    names = {}      # pc -> labels defined there
    for name, pc in (labels or {}).items():
        if 0 <= pc <= len(words):
            names.setdefault(pc, []).append(name)
    for pc, word in enumerate(words):
        insn = _decode(word)
        for kind, values in insn[1] if insn else ():
            target = kind.absolute(values, pc) if isinstance(kind, _Target) else None
            if target is not None and 0 <= target <= len(words):
                names.setdefault(target, [f"L{target}"])
    first = {pc: pc_names[0] for pc, pc_names in names.items()}
    lines = []
    for pc in range(len(words) + 1):
        lines += [f"{name}:" for name in names.get(pc, ())]
        if pc < len(words):
            lines.append(f"    {_show(words[pc], pc, first)}")
    return "".join(line + "\n" for line in lines)
