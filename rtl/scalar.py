"""Scalar pieces shared by the control unit and the module sequencers: the register file and
the ALU, both decoded from :data:`dypipe.sw.isa.OPS`."""

from amaranth import Signal, Array, Mux, Value
from amaranth.lib import data

from ..config import WORD_BITS
from ..sw.isa import Op, Err, Fmt, OPS, FIELDS, NUM_REGS, InsnLayout

__all__ = ["RegFile", "Decoded", "InsnFlow", "alu_ops", "alu"]


class RegFile:
    """``NUM_REGS`` 32-bit registers in flip-flops; ``r0`` reads as zero. Every register can be
    read at once (macro-instructions read a block of consecutive registers)."""

    def __init__(self, name):
        self.regs = Array(Signal(WORD_BITS, name=f"{name}_r{i}") for i in range(NUM_REGS))

    def read(self, idx):
        return Mux(idx == 0, 0, self.regs[idx])

    def read_block(self, base, count):
        """``count`` registers from ``base`` (wrapping past r31 reads r0.. as written)."""
        return [self.read((base + i)[:len(base)]) for i in range(count)]

    def write(self, m, idx, value):
        m.d.sync += self.regs[idx].eq(value)


class Decoded:
    """Views of one instruction word."""

    def __init__(self, word):
        self.insn = data.View(InsnLayout, word)
        self.op = self.insn.op
        self.a = self.insn.a
        self.b = self.insn.b
        self.c = self._field(word, "c")
        self.d = self._field(word, "d")
        self.tmpl = self._field(word, "tmpl")
        self.off = self._field(word, "off")
        self.imm16 = self.insn.imm16
        self.simm16 = self.insn.imm16.as_signed()
        self.simm21 = word[:FIELDS["imm21"][1]].as_signed()

    @staticmethod
    def _field(word, name):
        lsb, width = FIELDS[name]
        return word[lsb:lsb + width]


def alu_ops(unit):
    """The register-writing ALU instructions that ``unit`` runs."""
    formats = (Fmt.R, Fmt.I, Fmt.IU, Fmt.LI, Fmt.LUI)
    return [op for op, (fmt, units) in OPS.items()
            if unit in units and fmt in formats and op != Op.JALR]


def alu(m, d, rf, ops):
    """Result of ALU instruction ``d`` (one of ``ops``) over register file ``rf``."""
    ra, rb = rf.read(d.b), rf.read(d.c)
    result = Signal(WORD_BITS)
    shamt = d.imm16[:5]
    table = {
        Op.LI: d.simm21, Op.LUI: d.imm16 << 16,
        Op.ADD: ra + rb, Op.SUB: ra - rb, Op.MUL: ra * rb,
        Op.AND: ra & rb, Op.OR: ra | rb, Op.XOR: ra ^ rb,
        Op.SLL: ra << rb[:5], Op.SRL: ra >> rb[:5], Op.SRA: ra.as_signed() >> rb[:5],
        Op.SLT: ra.as_signed() < rb.as_signed(), Op.SLTU: ra < rb,
        Op.ADDI: ra + d.simm16, Op.ANDI: ra & d.imm16, Op.ORI: ra | d.imm16,
        Op.XORI: ra ^ d.imm16, Op.SLLI: ra << shamt, Op.SRLI: ra >> shamt,
        Op.SRAI: ra.as_signed() >> shamt, Op.SLTI: ra.as_signed() < d.simm16,
    }
    with m.Switch(d.op):
        for op in ops:
            with m.Case(op):
                m.d.comb += result.eq(table[op])
    return result


class InsnFlow:
    """Instruction fetch and error reporting inside an FSM with states ``EXEC`` (the
    instruction at ``pc`` is on ``imem.data``) and ``ERROR`` (stopped).

    :meth:`next` fetches a new PC (or stops with :attr:`Err.PC_RANGE` if it lies outside the
    instruction memory); :meth:`report` stops with an error. Both are called from FSM states.
    """

    def __init__(self, m, imem_words, pc, imem, err):
        self.m, self.imem_words, self.pc, self.err = m, imem_words, pc, err
        self.fetch = Signal()
        self.fetch_pc = Signal(len(pc) + 1)
        m.d.comb += [imem.addr.eq(self.fetch_pc), imem.en.eq(self.fetch)]
        with m.If(self.fetch):
            m.d.sync += pc.eq(self.fetch_pc)

    def report(self, code, addr=0, at=None):
        self.m.d.comb += [self.err.valid.eq(1), self.err.code.eq(code),
                          self.err.pc.eq(self.pc if at is None else at), self.err.addr.eq(addr)]
        self.m.next = "ERROR"

    def next(self, target):
        target = Value.cast(target)
        outside = target >= self.imem_words
        if target.shape().signed:
            outside = outside | (target < 0)
        with self.m.If(outside):
            self.report(Err.PC_RANGE, target, at=target)
        with self.m.Else():
            self.m.d.comb += [self.fetch.eq(1), self.fetch_pc.eq(target)]
            self.m.next = "EXEC"
