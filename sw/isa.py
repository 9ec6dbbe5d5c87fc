"""DyPipe ISA v1: the one definition of every encoding.

The RTL decodes with these enums and field positions, the assembler encodes with them and the
disassembler prints with them; nothing else writes an opcode number or a bit position.

An instruction is one 32-bit word::

    31      26 25    21 20    16 15    11 10           0
    +---------+--------+--------+--------+--------------+
    |   op    |   a    |   b    |   c    |              |   c = imm16[15:11]
    +---------+--------+--------+--------+--------------+
                       |<-------------- imm21 --------->|
                                |<------- imm16 ------->|

Every instruction belongs to one or more *units*: the control unit (CTRL) runs the control
program; the IO, PFU and STORE module sequencers run module functions. An instruction executed
on a unit it does not belong to stops the machine with :attr:`Err.ILLEGAL`. Opcode 0 is
illegal everywhere, so a jump into zeroed memory traps at once.

Register ``r0`` always reads as zero.

The control unit copies instruction words from DRAM into its instruction memory (programs
larger than it run as overlay segments, :mod:`dypipe.sw.link`). :attr:`Op.OVERLAY` copies and
jumps, the control unit waiting meanwhile; :attr:`Op.PREFETCH` starts the same copy in the
background and goes on, and :attr:`Op.ENTER` waits until it has landed and jumps. One copy
runs at a time: OVERLAY and PREFETCH, and LW and SW (the copy holds the control unit's memory
port), wait while one is under way.

A task is built word by word (SAVECTX for each context word, then SAVEPC with the footprint in
registers) or spawned from a *template* in one instruction: :attr:`Op.TPL` (or
:attr:`Op.TPLTASK`, whose definition is also a task), :attr:`Op.TPLCTX` and :attr:`Op.TPLPC`
define one, naming for each context word and range start the :class:`Operand` a SPAWN adds;
:attr:`Op.SPAWN` instantiates it with four operand registers (``docs/architecture.md``,
"Task templates").
"""

from amaranth.lib import enum, data

__all__ = [
    "Op", "Unit", "Buf", "Err", "Act", "Fmt", "FIELDS", "INSN_BITS", "NUM_REGS",
    "InsnLayout", "MvmFlags", "VecFn", "VecFlags", "AVG_SHIFT", "OPS", "DMA_PARAMS", "MVM_PARAMS",
    "CONV_PARAMS", "VEC_PARAMS", "FMT_PARAMS", "unit_params", "PARAM_BITS", "MODULE_UNITS",
    "Space", "RangeDesc", "FOOTPRINT_RANGES", "Operand", "SPAWN_OPERANDS",
    "encode", "decode", "sext",
]

INSN_BITS = 32
NUM_REGS = 32

#: Bit positions ``(lsb, width)`` of the instruction fields. ``d`` and ``tmpl`` (SPAWN) and
#: ``off`` (TPLCTX) are further slices of imm16.
FIELDS = {
    "imm16": (0, 16),
    "imm21": (0, 21),
    "c": (11, 5),
    "b": (16, 5),
    "a": (21, 5),
    "op": (26, 6),
    "d": (6, 5),
    "tmpl": (0, 6),
    "off": (0, 11),
}

#: The same fields as an Amaranth layout for the RTL's decoders (c and imm21 are slices).
InsnLayout = data.StructLayout({
    "imm16": FIELDS["imm16"][1],
    "b": FIELDS["b"][1],
    "a": FIELDS["a"][1],
    "op": FIELDS["op"][1],
})


class Op(enum.Enum, shape=6):
    ILLEGAL = 0
    HALT = 1
    NOP = 2
    LI = 3        # rd = sext(imm21)
    LUI = 4       # rd = imm16 << 16
    ADD = 5
    SUB = 6
    MUL = 7       # low 32 bits
    AND = 8
    OR = 9
    XOR = 10
    SLL = 11
    SRL = 12
    SRA = 13
    SLT = 14
    SLTU = 15
    ADDI = 16     # rd = ra + sext(imm16)
    ANDI = 17     # rd = ra & zext(imm16)
    ORI = 18
    XORI = 19
    SLLI = 20     # shift by imm16[4:0]
    SRLI = 21
    SRAI = 22
    SLTI = 23
    LW = 24       # rd = dram_word[ra + sext(imm16)]       (32-bit word address)
    SW = 25       # dram_word[ra + sext(imm16)] = rs
    BEQ = 26      # if ra == rb: pc += sext(imm16)
    BNE = 27
    BLT = 28
    BGE = 29
    BLTU = 30
    BGEU = 31
    JAL = 32      # rd = pc + 1; pc += sext(imm21)
    JALR = 33     # rd = pc + 1; pc = ra + sext(imm16)
    SAVECTX = 34  # context[slot][imm16] = rs
    SAVEPC = 35   # commit a task: module a, function at pc imm16, footprint in r[b] ..
    WAIT = 36     # wait until every committed task has finished
    OVERLAY = 37  # imem[imm16 ..] = dram_word[r[a] ..] (r[b] words); pc = imm16
    PREFETCH = 38  # the same copy in the background; pc += 1 at once
    ENTER = 39    # wait until the background copy has landed; pc = imm16
    LDC = 40      # rd = context[task slot][imm16]
    END = 41      # end of a module function
    DLOAD = 42    # 2-D DMA DRAM -> buffer a; parameters in r[b] .. r[b+5]
    DSTORE = 43   # 2-D DMA buffer a -> DRAM; parameters in r[b] .. r[b+5]
    MVM = 44      # matrix-vector tile on the MAC array; parameters r[b] .. r[b+4], flags imm16
    CONV = 45     # convolution tile on the MAC array; parameters r[b] .. r[b+13], flags imm16
    VEC = 46      # vector unit: pooling, elementwise, activation; r[b] .. r[b+14], flags imm16
    DLOAD3 = 47   # 3-D DMA DRAM -> buffer a; parameters in r[b] .. r[b+8]
    DSTORE3 = 48  # 3-D DMA buffer a -> DRAM; parameters in r[b] .. r[b+8]
    TPL = 49      # TPLCTX and TPLPC that follow define task template imm16
    TPLCTX = 50   # template context[imm16[10:0]] = rs, plus the spawn operand c (Operand)
    TPLPC = 51    # the template's module a, function imm16, footprint r[b] ..; no task
    SPAWN = 52    # commit a task from template tmpl, operands r[a], r[b], r[c], r[d]
    TPLTASK = 53  # TPL, and the definition that follows is also a task (its values as given)
    WAITN = 54    # wait until at most imm16 committed tasks are unfinished (WAIT: none)


class Unit(enum.Enum, shape=2):
    """Where an instruction runs, and where an error happened."""
    IO = 0
    PFU = 1
    STORE = 2
    CTRL = 3


#: The units that run module functions (tasks), in the order of their numbers.
MODULE_UNITS = (Unit.IO, Unit.PFU, Unit.STORE)


class Buf(enum.Enum, shape=2):
    """The banks of the global buffer."""
    NBIN = 0
    SB = 1
    NBOUT = 2


class Err(enum.Enum, shape=4):
    """Error codes in the status registers."""
    NONE = 0
    ILLEGAL = 1       # an opcode that does not exist or does not run on this unit
    DRAM_RANGE = 2    # a DRAM access outside the DRAM
    BUF_RANGE = 3     # a global-buffer access outside its bank
    CTX_RANGE = 4     # a context offset outside the slot
    PC_RANGE = 5      # a PC outside the instruction memory (a task's: outside func_words)
    BAD_TASK = 6      # a malformed task record (no such module)
    BAD_PARAM = 7     # a macro-instruction parameter that makes no sense (zero length ...)
    WATCHDOG = 8      # no progress for too long


class Act(enum.Enum, shape=2):
    """Activation applied on write-back (MAC array and vector unit). Sigmoid and tanh are
    piecewise linear (DianNao's NFU-3); :mod:`dypipe.sw.pwl` holds their one table."""
    NONE = 0
    RELU = 1
    SIGMOID = 2
    TANH = 3


#: Flags of :attr:`Op.MVM` and :attr:`Op.CONV` in imm16. ``acc_in`` and ``acc_out`` split one
#: dot product over several instructions (an FC whose weights for one block exceed SB): the
#: accumulators carry over exactly, without rounding. Both need an instruction with one output
#: (one pixel, one block); else :attr:`Err.BAD_PARAM`.
MvmFlags = data.StructLayout({
    "bias": 1,      # start each output block from the bias row (NBout) instead of zero
    "act": Act,
    "acc_in": 1,    # start from the accumulators the last MVM / CONV kept (bias is ignored)
    "acc_out": 1,   # keep the accumulators for the next instruction; write nothing back
    "wshift": 4,    # the weights have frac_bits + wshift fraction bits: the bias enters and
                    # the write-back rounds by that many bits (a layer's weights use int16)
})

class VecFn(enum.Enum, shape=3):
    """What :attr:`Op.VEC` computes for each output row (see :data:`VEC_PARAMS`)."""
    MAX = 0       # max over the window
    AVG = 1       # sum over the window, times scale / 2**16, rounded
    ADD = 2       # a + b, saturated
    MUL = 3       # a * b >> frac_bits, rounded and saturated
    COPY = 4      # a (with the activation: a standalone activation layer)


#: AVG multiplies the window sum by ``scale / 2**AVG_SHIFT``.
AVG_SHIFT = 16

#: Flags of :attr:`Op.VEC` in imm16.
VecFlags = data.StructLayout({
    "fn": VecFn,
    "act": Act,
})


class Space(enum.Enum, shape=3):
    """Address spaces a task footprint names; addresses in all of them count DRAM beats."""
    NONE = 0      # unused range
    NBIN = 1
    SB = 2
    NBOUT = 3
    DRAM = 4


#: Ranges in a task's footprint. :attr:`Op.SAVEPC` with ``b != 0`` reads them from registers
#: ``r[b] .. r[b + 2 * FOOTPRINT_RANGES - 1]``: range ``i`` is a :data:`RangeDesc` in
#: ``r[b + 2i]`` and its length in beats in ``r[b + 2i + 1]``. With ``b == 0`` the task is a
#: *barrier*: it conflicts with every other task.
FOOTPRINT_RANGES = 4

class Operand(enum.Enum, shape=3):
    """Which operand of :attr:`Op.SPAWN` a template's context word or footprint range start
    adds to its value: none (the value is the template's), or the register in field a, b, c
    or d of the SPAWN."""
    NONE = 0
    A = 1
    B = 2
    C = 3
    D = 4


#: Registers a SPAWN names (fields a, b, c, d).
SPAWN_OPERANDS = 4

#: First word of a footprint range. Space and kind sit in the low bits so that a small
#: constant range is one ``li``. ``operand`` is for templates (TPLPC): the SPAWN operand added
#: to ``lo``; a task's own range (SAVEPC, or one a SPAWN made) has it 0, else the record is
#: malformed.
RangeDesc = data.StructLayout({
    "space": Space,
    "write": 1,      # the task writes the range (else it only reads it)
    "lo": 25,        # first beat (signed in a template: TPLPC)
    "operand": Operand,
})

#: Registers read by the DMA macro-instructions, starting at r[b]: ``planes`` planes of ``rows``
#: rows of ``row_beats`` consecutive beats; row ``i`` of plane ``p`` starts at DRAM beat
#: ``dram_addr + p * dram_plane_stride + i * dram_stride`` and at bank beat
#: ``buf_addr + p * buf_plane_stride + i * buf_stride``. DLOAD3 / DSTORE3 read all nine;
#: DLOAD / DSTORE read the first six (one plane), so a 2-D transfer needs six registers.
DMA_PARAMS = ("dram_addr", "buf_addr", "rows", "row_beats", "dram_stride", "buf_stride",
              "planes", "dram_plane_stride", "buf_plane_stride")
#: Registers read by :attr:`Op.MVM`, starting at r[b].
MVM_PARAMS = ("dst", "src", "weights", "k_chunks", "m_blocks")
#: :attr:`Op.CONV` and :attr:`Op.VEC` stop with :attr:`Err.BAD_PARAM` when a parameter is not
#: below ``2**PARAM_BITS`` (no buffer has that many rows), so that their range checks fit
#: 64-bit arithmetic.
PARAM_BITS = 20

#: Registers read by :attr:`Op.CONV`, starting at r[b]. NBin is addressed in elements (``src``
#: and its strides: a chunk of C inputs may start at any lane), SB and NBout in rows. For output
#: pixel (y, x) < (y_count, x_count) and block ``i`` < ``m_blocks``::
#:
#:     acc = (bias flag ? NBout[bias + i] << frac_bits : 0)
#:           + sum_{h < kh, k < k_chunks} SB[weights + (i * kh + h) * k_chunks + k]
#:                 . NBin_elements[e .. e + C) with e = src + y*y_stride + x*x_stride
#:                                                  + h*kh_stride + k*C
#:     NBout[dst + y*dst_y_stride + x*dst_x_stride + i] = act(round_saturate(acc))
#:
#: :attr:`Op.MVM` is the case of one pixel, one kernel row and ``bias = dst``; its ``src`` counts
#: NBin rows.
CONV_PARAMS = ("dst", "src", "weights", "k_chunks", "m_blocks", "bias", "kh", "kh_stride",
               "x_count", "x_stride", "y_count", "y_stride", "dst_x_stride", "dst_y_stride")
#: Registers read by :attr:`Op.VEC`, starting at r[b]. Rows are NBin rows (``pe_cols``
#: elements), for inputs and outputs alike. For output pixel (y, x) and chunk ``c``::
#:
#:     base = src + y*y_stride + x*x_stride + c
#:     window = NBin[base + i*kh_stride + j*kw_stride]  for i < kh, j < kw   (MAX, AVG, COPY)
#:     a, b = NBin[base], NBin[src_b - src + base]                           (ADD, MUL)
#:     NBin[dst + y*dst_y_stride + x*dst_x_stride + c] = act(fn(...))
#:
#: lane by lane; ``scale`` is AVG's multiplier (2**16 / window size, rounded).
VEC_PARAMS = ("dst", "src", "src_b", "chunks", "kh", "kw", "kh_stride", "kw_stride",
              "x_count", "x_stride", "y_count", "y_stride", "dst_x_stride", "dst_y_stride",
              "scale")


class Fmt(enum.Enum):
    """Operand syntax of an instruction; says which fields hold which operand."""
    NONE = "none"          # halt
    R = "rd, ra, rb"       # a=rd b=ra c=rb
    I = "rd, ra, simm16"   # a=rd b=ra imm16
    IU = "rd, ra, uimm16"
    LI = "rd, simm21"      # a=rd imm21
    LUI = "rd, uimm16"     # a=rd imm16
    LOAD = "rd, simm16(ra)"
    STORE = "rs, simm16(ra)"
    BRANCH = "ra, rb, target"   # imm16 = target - pc
    JAL = "rd, target"          # imm21 = target - pc
    CTX = "rs, offset"          # a=rs imm16 = context offset (unsigned)
    LDC = "rd, offset"          # a=rd imm16 = context offset (unsigned)
    TASK = "unit, rb, target"   # a=unit b=footprint base imm16 = absolute pc
    OVERLAY = "ra, rb, dest"    # a=DRAM word address b=word count imm16 = absolute imem pc
    DEST = "dest"               # imm16 = absolute imem pc
    TMPL = "template"           # imm16 = template number
    COUNT = "count"             # imm16 = a number of tasks (unsigned)
    TPLCTX = "rs, offset, operand"   # a=rs off=context offset c=Operand
    SPAWN = "template, ra, rb, rc, rd"   # tmpl=template; a, b, c, d = operand registers
    DMA = "buf, rs"             # a=buf b=first parameter register
    MVM = "rs, flags"           # b=first parameter register imm16=flags
    VEC = "rs, vflags"          # b=first parameter register imm16=vector flags


_SCALAR = {Unit.CTRL, Unit.IO, Unit.PFU, Unit.STORE}
_CTRL = {Unit.CTRL}

#: ``Op -> (Fmt, units that may run it)``
OPS = {
    Op.HALT: (Fmt.NONE, _CTRL),
    Op.NOP: (Fmt.NONE, _SCALAR),
    Op.LI: (Fmt.LI, _SCALAR),
    Op.LUI: (Fmt.LUI, _SCALAR),
    Op.ADD: (Fmt.R, _SCALAR),
    Op.SUB: (Fmt.R, _SCALAR),
    Op.MUL: (Fmt.R, _SCALAR),
    Op.AND: (Fmt.R, _CTRL),
    Op.OR: (Fmt.R, _CTRL),
    Op.XOR: (Fmt.R, _CTRL),
    Op.SLL: (Fmt.R, _CTRL),
    Op.SRL: (Fmt.R, _CTRL),
    Op.SRA: (Fmt.R, _CTRL),
    Op.SLT: (Fmt.R, _CTRL),
    Op.SLTU: (Fmt.R, _CTRL),
    Op.ADDI: (Fmt.I, _SCALAR),
    Op.ANDI: (Fmt.IU, _CTRL),
    Op.ORI: (Fmt.IU, _SCALAR),
    Op.XORI: (Fmt.IU, _CTRL),
    Op.SLLI: (Fmt.IU, _SCALAR),
    Op.SRLI: (Fmt.IU, _CTRL),
    Op.SRAI: (Fmt.IU, _CTRL),
    Op.SLTI: (Fmt.I, _CTRL),
    Op.LW: (Fmt.LOAD, _CTRL),
    Op.SW: (Fmt.STORE, _CTRL),
    Op.BEQ: (Fmt.BRANCH, _CTRL),
    Op.BNE: (Fmt.BRANCH, _CTRL),
    Op.BLT: (Fmt.BRANCH, _CTRL),
    Op.BGE: (Fmt.BRANCH, _CTRL),
    Op.BLTU: (Fmt.BRANCH, _CTRL),
    Op.BGEU: (Fmt.BRANCH, _CTRL),
    Op.JAL: (Fmt.JAL, _CTRL),
    Op.JALR: (Fmt.I, _CTRL),
    Op.SAVECTX: (Fmt.CTX, _CTRL),
    Op.SAVEPC: (Fmt.TASK, _CTRL),
    Op.WAIT: (Fmt.NONE, _CTRL),
    Op.WAITN: (Fmt.COUNT, _CTRL),
    Op.OVERLAY: (Fmt.OVERLAY, _CTRL),
    Op.PREFETCH: (Fmt.OVERLAY, _CTRL),
    Op.ENTER: (Fmt.DEST, _CTRL),
    Op.TPL: (Fmt.TMPL, _CTRL),
    Op.TPLTASK: (Fmt.TMPL, _CTRL),
    Op.TPLCTX: (Fmt.TPLCTX, _CTRL),
    Op.TPLPC: (Fmt.TASK, _CTRL),
    Op.SPAWN: (Fmt.SPAWN, _CTRL),
    Op.LDC: (Fmt.LDC, {Unit.IO, Unit.PFU, Unit.STORE}),
    Op.END: (Fmt.NONE, {Unit.IO, Unit.PFU, Unit.STORE}),
    Op.DLOAD: (Fmt.DMA, {Unit.IO}),
    Op.DSTORE: (Fmt.DMA, {Unit.STORE}),
    Op.DLOAD3: (Fmt.DMA, {Unit.IO}),
    Op.DSTORE3: (Fmt.DMA, {Unit.STORE}),
    Op.MVM: (Fmt.MVM, {Unit.PFU}),
    Op.CONV: (Fmt.MVM, {Unit.PFU}),
    Op.VEC: (Fmt.VEC, {Unit.PFU}),
}

#: The parameter registers a macro-instruction format reads, from ``r[b]`` (:attr:`Op.MVM` reads
#: the first five of CONV's; DLOAD / DSTORE the first six of the DMA's).
FMT_PARAMS = {Fmt.DMA: DMA_PARAMS, Fmt.MVM: CONV_PARAMS, Fmt.VEC: VEC_PARAMS}


def unit_params(unit):
    """How many parameter registers the macro-instructions of ``unit`` read, at most."""
    return max((len(FMT_PARAMS[fmt]) for fmt, units in OPS.values()
                if fmt in FMT_PARAMS and Unit(unit) in units), default=0)


def _mask(width):
    return (1 << width) - 1


def sext(value, width):
    """Sign-extend the low ``width`` bits of ``value``."""
    value &= _mask(width)
    return value - (1 << width) if value >> (width - 1) else value


def encode(op, a=0, b=0, c=0, imm16=None, imm21=None, d=0, tmpl=0, off=0):
    """Pack fields into an instruction word. Immediates may be negative; they are checked to
    fit their field (signed or unsigned), and :class:`ValueError` names the field that does not."""
    op = Op(op)
    word = op.value << FIELDS["op"][0]
    for name, value in (("a", a), ("b", b), ("c", c), ("d", d), ("tmpl", tmpl), ("off", off)):
        lsb, width = FIELDS[name]
        if not 0 <= int(value) <= _mask(width):
            raise ValueError(f"{op.name}: field {name} = {value!r} does not fit {width} bits")
        word |= int(value) << lsb
    for name, value in (("imm16", imm16), ("imm21", imm21)):
        if value is None:
            continue
        lsb, width = FIELDS[name]
        if not -(1 << (width - 1)) <= value <= _mask(width):
            raise ValueError(f"{op.name}: {name} = {value!r} does not fit {width} bits")
        word |= (value & _mask(width)) << lsb
    return word


def decode(word):
    """Unpack an instruction word into a dict of raw fields, plus ``op`` as :class:`Op` (or the
    raw number when it is not an opcode)."""
    fields = {name: (word >> lsb) & _mask(width) for name, (lsb, width) in FIELDS.items()}
    try:
        fields["op"] = Op(fields["op"])
    except ValueError:
        pass
    return fields
