"""Scalar pieces shared by the control unit and the module sequencers: the register file and
the ALU, both decoded from :data:`dypipe.sw.isa.OPS`."""

from amaranth import Const, Elaboratable, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from ..config import WORD_BITS
from ..sw.isa import Op, Err, Fmt, OPS, FIELDS, NUM_REGS, InsnLayout

__all__ = ["RegFile", "Decoded", "InsnFlow", "SplitOp", "split_mul", "alu_ops", "alu",
           "later_wins"]


def later_wins(m, calls, name):
    """Combine ``calls``, a list of ``(select, values)`` made in program order, into ``(any,
    values)``: the values of the last call whose ``select`` is high, as assignments in the same
    order would give, or zeros. Each value is masked by its call's own select and the masks are
    ORed: one level of logic behind the values, not a chain of one multiplexer per call. The
    selects, known early in the cycle, carry the priority."""
    later, out = Const(0), None
    for k in reversed(range(len(calls))):
        select, values = calls[k]
        mine = Signal(name=f"{name}{k}_wins")
        m.d.comb += mine.eq(select & ~later)
        masked = [Mux(mine, value, 0) for value in values]
        out = masked if out is None else [a | b for a, b in zip(out, masked)]
        later = later | select
    return later, out


class RegFile(Elaboratable):
    """``NUM_REGS`` 32-bit registers; ``r0`` reads as zero. A submodule of the unit that reads
    and writes them.

    They are a memory with one write port and an asynchronous read port per distinct register
    read (:meth:`read`; a macro-instruction's block of consecutive registers is a read each,
    indexed by :meth:`InsnFlow.indexes_ahead`), so that an FPGA keeps them in LUT RAM, a copy
    per read port, instead of flip-flops behind a multiplexer per read port: the PFU's
    sequencer reads 15 parameter registers at once. Writes take effect at the clock edge, as
    flip-flops' would; ``r0`` is never written. Reset does not clear the registers: they hold
    zero when the design starts.
    """

    def __init__(self, name):
        self._name = name
        self._reads = {}
        self._writes = []           # (select, index, value) of each write()

    def read(self, idx):
        """The register ``idx`` (an index expression; the same expression object read twice
        shares one read port)."""
        idx = Value.cast(idx)
        key = id(idx)               # idx is kept in _reads, so its id stays its own
        if key not in self._reads:
            self._reads[key] = (idx, Signal(WORD_BITS, name=f"{self._name}_rd{len(self._reads)}"))
        return self._reads[key][1]

    def write(self, m, idx, value):
        """In ``m``'s current control flow: ``idx`` takes ``value`` at the clock edge (one write
        a cycle; where two calls act in one cycle, the later one's, as for assignments)."""
        select = Signal(name=f"{self._name}_w{len(self._writes)}")
        m.d.comb += select.eq(1)
        self._writes.append((select, Value.cast(idx), Value.cast(value)))

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=unsigned(WORD_BITS), depth=NUM_REGS, init=[],
                                        attrs={"ram_style": "distributed"})
        w = mem.write_port()
        # The last call's write (the control unit's six calls were a 32-bit chain of
        # multiplexers behind its ALU before ``later_wins``).
        _, (addr, data_, en) = later_wins(m, [(select, (idx, value, idx != 0))
                                              for select, idx, value in self._writes],
                                          f"{self._name}_w")
        m.d.comb += [w.addr.eq(addr), w.data.eq(data_), w.en.eq(en)]
        for idx, data_ in self._reads.values():
            r = mem.read_port(domain="comb")
            m.d.comb += [r.addr.eq(idx), data_.eq(r.data)]
        return m


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


class SplitOp:
    """An instruction over two cycles, for one whose result was the longest path of a unit's
    execute in one: ``parts`` (Values of the operands, as wide as each needs) are registered
    every cycle, and :attr:`result`, ``finish`` of the registered parts (the first part, if
    not given), is written in the next. The instruction waits a cycle, then writes
    :attr:`result` (:meth:`execute`)."""

    def __init__(self, m, parts, finish=None):
        self._m = m
        held = []
        for k, part in enumerate(parts):
            held.append(Signal(part.shape(), name=f"split_part{k}"))
            m.d.sync += held[-1].eq(part)
        self.result = Signal(WORD_BITS)
        m.d.comb += self.result.eq(finish(*held) if finish else held[0])
        self._second = Signal()                 # the parts of this instruction are registered

    def execute(self, rf, rd, advance, stall=None):
        """The instruction in the unit's execute state: its first cycle waits (and sets
        ``stall``, if given); its second writes :attr:`result` into ``rd`` and calls
        ``advance``."""
        m = self._m
        with m.If(self._second):
            rf.write(m, rd, self.result)
            advance()
            m.d.sync += self._second.eq(0)
        with m.Else():
            if stall is not None:
                m.d.comb += stall.eq(1)
            m.d.sync += self._second.eq(1)


def split_mul(m, a, b):
    """A 32-bit MUL (the low word of the product) over two cycles (:class:`SplitOp`): three
    16 x 16 products of ``a`` and ``b`` registered, added in the second cycle."""
    return SplitOp(m, [a[:16] * b[:16], (a[:16] * b[16:])[:16], (a[16:] * b[:16])[:16]],
                   lambda ll, lh, hl: ll + ((lh + hl) << 16))


class InsnFlow:
    """Instruction fetch, one instruction ahead, and error reporting inside an FSM with states
    ``EXEC`` (running) and ``ERROR`` (stopped). Called from FSM states.

    The instruction memory is a block RAM whose output comes late in the cycle, so its word is
    registered in :attr:`ir` before it is decoded. While :attr:`ready`, ``ir`` holds the
    instruction at ``pc`` and the memory is reading the one at ``pc + 1``:

    * :meth:`advance` moves to ``pc + 1`` in the next cycle (one instruction a cycle);
    * :meth:`jump` fetches another PC. The cycle after is a *fill*: ``ready`` is low, the unit
      executes nothing and calls :meth:`fill`, which takes the word into ``ir``. So a jump
      costs a cycle more than a step;
    * :meth:`report` stops with an error, shown on ``err`` from the next cycle. A PC outside
      the instruction memory is :attr:`Err.PC_RANGE`, reported in the fill cycle after the
      jump or step that went there (so the range check is not in the cycle that computes the
      PC), never on the read ahead.

    In any other cycle nothing is fetched, and the memory keeps the word at ``pc + 1`` on its
    output: a unit may stay in a state for many cycles and :meth:`advance` from there.
    """

    def __init__(self, m, imem_words, pc, imem, err):
        self.m, self.imem_words, self.pc, self.err = m, imem_words, pc, err
        self._imem = imem
        self.ir = Signal(WORD_BITS)
        self.ready = Signal()
        self._fetch = Signal()
        self._fetch_pc = Signal(len(pc) + 1)
        self._take = Signal()
        self._outside = Signal()                    # the PC moved outside the memory: to
        self._target = Signal(signed(WORD_BITS + 2))    # report in the fill cycle, and where
        # The address of a step (``pc + 2``) unless a jump or a fill says otherwise: in a cycle
        # that fetches nothing the memory ignores it, so whether an instruction steps or stalls
        # (a register comparison, a full ring) reaches only ``en``, not the address's
        # multiplexer in front of the block RAMs (docs/fpga.md).
        m.d.comb += [imem.addr.eq(self._fetch_pc), imem.en.eq(self._fetch),
                     self._fetch_pc.eq(pc + 2)]
        m.submodules.errors = self._errors = _ErrorRegister(err)
        with m.If(self._take):
            m.d.sync += [self.ir.eq(imem.data), self.ready.eq(1)]

    def report(self, code, addr=0, at=None):
        """Stop with ``code``: ``err`` shows it from the next cycle (in ``ERROR``), from
        registers, so that the unit's checks do not run into the top's choice among the
        reporters in one cycle. Where two reports act in one cycle, the later call's wins."""
        self._errors.add(self.m, code, self.pc if at is None else at, addr)
        self.m.next = "ERROR"

    def indexes_ahead(self, field, count):
        """Register indexes ``field``, ``field + 1`` .. ``field + count - 1`` of the instruction
        in :attr:`ir` (wrapping past the field's width), for a block of register reads. The
        first is the field itself; the others are computed from the memory's word as ``ir``
        takes it and held beside ``ir``, so that the reads' addresses come from flip-flops,
        not from an adder behind ``ir``. Call it outside any ``If`` or FSM state: the
        registers must follow every word ``ir`` takes."""
        indexes = [Decoded._field(self.ir, field)]
        for i in range(1, count):
            index = Signal.like(indexes[0], name=f"{field}_plus{i}")
            with self.m.If(self._take):
                self.m.d.sync += index.eq(Decoded._field(self._imem.data, field) + i)
            indexes.append(index)
        return indexes

    def _outside_of(self, target):
        outside = target >= self.imem_words
        if target.shape().signed:
            outside = outside | (target < 0)
        return outside

    def jump(self, target):
        """Go on at ``target``, after a fill cycle."""
        target = Value.cast(target)
        self.m.d.comb += [self._fetch.eq(1), self._fetch_pc.eq(target)]
        self.m.d.sync += [self.pc.eq(target), self.ready.eq(0),
                          self._outside.eq(self._outside_of(target)), self._target.eq(target)]
        self.m.next = "EXEC"

    def advance(self):
        """Go on at ``pc + 1`` in the next cycle (after a fill cycle that reports
        :attr:`Err.PC_RANGE` if that is past the memory)."""
        target = self.pc + 1
        self.m.d.comb += [self._fetch.eq(1), self._take.eq(1)]     # at ``pc + 2``, the default
        self.m.d.sync += self.pc.eq(target)
        with self.m.If(self._outside_of(target)):
            self.m.d.sync += [self.ready.eq(0), self._outside.eq(1), self._target.eq(target)]
        self.m.next = "EXEC"

    def fill(self):
        """In a fill cycle: take the word at ``pc`` into ``ir`` and read the one after, or
        report the PC outside the memory."""
        with self.m.If(self._outside):
            self.report(Err.PC_RANGE, self._target, at=self._target)
        with self.m.Else():
            self.m.d.comb += [self._fetch.eq(1), self._fetch_pc.eq(self.pc + 1),
                              self._take.eq(1)]


class _ErrorRegister(Elaboratable):
    """The registers behind a unit's ``err`` (:meth:`InsnFlow.report`): each report is a select,
    set in the control flow that reports, and its code, PC and address; the registers take
    the last one's (:func:`later_wins`), not a chain of multiplexers through the unit's FSM."""

    def __init__(self, err):
        self._err = err
        self._calls = []

    def add(self, m, code, pc, addr):
        """A report in ``m``'s current control flow."""
        select = Signal(name=f"report{len(self._calls)}")
        m.d.comb += select.eq(1)
        self._calls.append((select, (Value.cast(code), Value.cast(pc), Value.cast(addr))))

    def elaborate(self, platform):
        m = Module()
        err = self._err
        held, code = Signal(), Signal.like(err.code)
        pc, addr = Signal.like(err.pc), Signal.like(err.addr)
        m.d.comb += [err.valid.eq(held), err.code.eq(code), err.pc.eq(pc), err.addr.eq(addr)]
        if self._calls:
            any_, (new_code, new_pc, new_addr) = later_wins(m, self._calls, "report")
            with m.If(any_):
                m.d.sync += [held.eq(1), code.eq(new_code), pc.eq(new_pc), addr.eq(new_addr)]
        return m
