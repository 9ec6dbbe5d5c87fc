"""The control unit: a small scalar core that runs the control program.

It boots by copying ``prog_len`` instruction words from DRAM word 0 into the instruction
memory, then runs from PC 0. :attr:`Op.OVERLAY` copies more words from DRAM over part of the
instruction memory at run time and jumps there; :attr:`Op.PREFETCH` starts the same copy and
goes on executing while it runs, and :attr:`Op.ENTER` waits for it to land and jumps. All
copies stream through one pipelined copy engine (:mod:`.imem_copy`), one word a cycle, one
copy at a time; it holds the memory port, so LW and SW wait for it too.

Besides scalar arithmetic, DRAM word loads/stores and branches it builds tasks:
:attr:`Op.SAVECTX` writes a register into the context slot at the head of the task ring and
:attr:`Op.SAVEPC` commits a task record for that slot and moves the head on. Both stall while
the head slot still belongs to an unfinished task, so a live context is never overwritten.
:attr:`Op.WAIT` and :attr:`Op.HALT` wait until every committed task finished.
"""

from amaranth import Module, Signal, Const, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import WORD_BITS
from ..sw.isa import Op, Err, Unit
from .imem_copy import ImemCopy
from .mem_port import MemPort
from .scalar import RegFile, Decoded, InsnFlow, alu_ops, alu
from .sequencer import ErrorReport
from .sram import ReadPort, RowWritePort
from .task import TaskPort, RetirePort, PC_BITS, slot_bits
from ..sw.isa import MODULE_UNITS, FOOTPRINT_RANGES

__all__ = ["ControlUnit"]


class ControlUnit(wiring.Component):
    """Members
    -------
    start : In(1)          begin booting (from IDLE)
    prog_len : In(PC_BITS + 1)   instruction words to boot
    running : Out(1)       booted and not yet halted (counts towards ``cycles``)
    booting : Out(1)       copying the program in at boot (counts towards ``boot_cycles``)
    pc : Out(PC_BITS)      the instruction executing
    halted : Out(1)        HALT retired
    stall : Out(1)         this cycle waits (memory, ring full, WAIT/HALT, a copy)
    imem_w : Out(RowWritePort), imem_r : Out(ReadPort)
    cb_w : Out(RowWritePort)  context writes
    mem : Out(MemPort)
    task : Out(TaskPort)   committed tasks, to the dispatcher
    retire : In(RetirePort).array(len(MODULE_UNITS))   slots given back
    tasks_idle : In(1)     the dispatcher holds no unfinished task
    err : Out(ErrorReport)
    """

    def __init__(self, config):
        self._config = config
        imem_bits = (config.imem_words - 1).bit_length()
        super().__init__({
            "start": In(1), "prog_len": In(PC_BITS + 1),
            "running": Out(1), "booting": Out(1), "halted": Out(1), "stall": Out(1),
            "pc": Out(PC_BITS),
            "imem_w": Out(RowWritePort(imem_bits, WORD_BITS)),
            "imem_r": Out(ReadPort(imem_bits, WORD_BITS)),
            "cb_w": Out(RowWritePort((config.cb_words - 1).bit_length(), WORD_BITS)),
            "mem": Out(MemPort(config)),
            "task": Out(TaskPort(config)),
            "retire": In(RetirePort(config)).array(len(MODULE_UNITS)),
            "tasks_idle": In(1),
            "err": Out(ErrorReport()),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        bw = cfg.beat_words
        word_sel_bits = (bw - 1).bit_length()
        dram_words = cfg.dram_bytes // 4

        pc = self.pc
        rf = RegFile("ctrl")
        d = Decoded(self.imem_r.data)
        ops = alu_ops(Unit.CTRL)
        result = alu(m, d, rf, ops)

        # -- the task ring: head slot and which slots are live -------------------------------
        head = Signal(slot_bits(cfg))
        live = Signal(cfg.cb_slots)
        commit = Signal()
        set_mask = Signal(cfg.cb_slots)
        clear_mask = Signal(cfg.cb_slots)
        m.d.comb += set_mask.eq(Mux(commit, 1 << head, 0))
        m.d.comb += clear_mask.eq(0)
        for r in self.retire:
            with m.If(r.valid):
                m.d.comb += clear_mask.bit_select(r.slot, 1).eq(1)
        m.d.sync += live.eq((live & ~clear_mask) | set_mask)
        with m.If(commit):
            m.d.sync += head.eq(head + 1)
        ring_full = live.bit_select(head, 1)

        # -- fetch -----------------------------------------------------------------------------
        flow = InsnFlow(m, cfg.imem_words, pc, self.imem_r, self.err)
        report, next_insn = flow.report, flow.next
        fetch, fetch_pc = flow.fetch, flow.fetch_pc

        ra, rs = rf.read(d.b), rf.read(d.a)
        ea = Signal(WORD_BITS + 1)       # LW/SW word address
        m.d.comb += ea.eq(ra + d.simm16)
        ea_word = Signal(word_sel_bits)
        if word_sel_bits:
            m.d.sync += ea_word.eq(ea[:word_sel_bits])
        m.d.comb += [
            self.mem.addr.eq(ea >> word_sel_bits),
            self.mem.wdata.eq(rs.replicate(bw)),
            self.mem.wmask.eq(Const(0xF, 4) << (ea[:word_sel_bits] * 4 if word_sel_bits else 0)),
            self.cb_w.addr.eq(head * cfg.ctx_slot_words + d.imm16),
            self.cb_w.data.eq(rs),
            self.task.payload.unit.eq(d.a),
            self.task.payload.pc.eq(d.imm16),
            self.task.payload.slot.eq(head),
            self.task.payload.barrier.eq(d.b == 0),
        ]
        # A barrier (rb = r0) carries no ranges.
        footprint = rf.read_block(d.b, 2 * FOOTPRINT_RANGES)
        for i, rng in enumerate(self.task.payload.ranges):
            with m.If(d.b != 0):
                m.d.comb += [rng.desc.eq(footprint[2 * i]), rng.len.eq(footprint[2 * i + 1])]
        taken = Signal()
        # Branch and OVERLAY operands: a = ra, b = rb (see Fmt.BRANCH, Fmt.OVERLAY).
        bra, brb = rf.read(d.a), rf.read(d.b)
        with m.Switch(d.op):
            for op, value in ((Op.BEQ, bra == brb), (Op.BNE, bra != brb),
                              (Op.BLT, bra.as_signed() < brb.as_signed()),
                              (Op.BGE, bra.as_signed() >= brb.as_signed()),
                              (Op.BLTU, bra < brb), (Op.BGEU, bra >= brb)):
                with m.Case(op):
                    m.d.comb += taken.eq(value)

        # -- the copy engine: the boot, OVERLAY and PREFETCH ----------------------------------
        m.submodules.copy = copy = ImemCopy(cfg)
        wiring.connect(m, copy.imem_w, wiring.flipped(self.imem_w))
        m.d.comb += [copy.src.eq(bra), copy.count.eq(brb), copy.dst.eq(d.imm16)]
        # OVERLAY / PREFETCH a, b, dest: r[a] is the source word address, r[b] the word count.
        src_end = Signal(WORD_BITS + 1)
        dst_end = Signal(WORD_BITS + 1)
        m.d.comb += [src_end.eq(bra + brb), dst_end.eq(d.imm16 + brb)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    with m.If(self.prog_len > cfg.imem_words):
                        report(Err.PC_RANGE, self.prog_len, at=0)
                    with m.Else():
                        m.d.comb += [copy.start.eq(1), copy.src.eq(0),
                                     copy.count.eq(self.prog_len), copy.dst.eq(0)]
                        m.next = "BOOT"
            with m.State("BOOT"):
                m.d.comb += self.booting.eq(1)
                with m.If(~copy.busy):
                    m.d.comb += [fetch.eq(1), fetch_pc.eq(0)]
                    m.next = "EXEC"
            with m.State("EXEC"):
                m.d.comb += self.running.eq(1)
                with m.Switch(d.op):
                    with m.Case(*ops):
                        rf.write(m, d.a, result)
                        next_insn(pc + 1)
                    with m.Case(Op.NOP):
                        next_insn(pc + 1)
                    with m.Case(Op.BEQ, Op.BNE, Op.BLT, Op.BGE, Op.BLTU, Op.BGEU):
                        next_insn(Mux(taken, pc + d.simm16, pc + 1))
                    with m.Case(Op.JAL):
                        rf.write(m, d.a, pc + 1)
                        next_insn(pc + d.simm21)
                    with m.Case(Op.JALR):
                        rf.write(m, d.a, pc + 1)
                        next_insn(ra.as_signed() + d.simm16)
                    with m.Case(Op.LW, Op.SW):
                        with m.If(ea >= dram_words):
                            report(Err.DRAM_RANGE, ea)
                        with m.Elif(copy.busy):         # the copy holds the memory port
                            m.d.comb += self.stall.eq(1)
                        with m.Else():
                            m.d.comb += [self.mem.valid.eq(1),
                                         self.mem.write.eq(d.op == Op.SW)]
                            with m.If(~self.mem.ready):
                                m.d.comb += self.stall.eq(1)
                            with m.Elif(d.op == Op.SW):
                                next_insn(pc + 1)
                            with m.Else():
                                m.next = "LW"
                    with m.Case(Op.SAVECTX):
                        with m.If(d.imm16 >= cfg.ctx_slot_words):
                            report(Err.CTX_RANGE, d.imm16)
                        with m.Elif(ring_full):
                            m.d.comb += self.stall.eq(1)
                        with m.Else():
                            m.d.comb += self.cb_w.en.eq(1)
                            next_insn(pc + 1)
                    with m.Case(Op.SAVEPC):
                        with m.If(ring_full):
                            m.d.comb += self.stall.eq(1)
                        with m.Else():
                            m.d.comb += self.task.valid.eq(1)
                            with m.If(self.task.ready):
                                m.d.comb += commit.eq(1)
                                next_insn(pc + 1)
                            with m.Else():
                                m.d.comb += self.stall.eq(1)
                    with m.Case(Op.OVERLAY, Op.PREFETCH):
                        # Checked before a copy under way has landed: nothing moves on an error.
                        with m.If(brb == 0):
                            report(Err.BAD_PARAM, 0)
                        with m.Elif(src_end > dram_words):
                            report(Err.DRAM_RANGE, src_end - 1)
                        with m.Elif(dst_end > cfg.imem_words):
                            report(Err.PC_RANGE, dst_end - 1)
                        with m.Elif(copy.busy):
                            m.d.comb += self.stall.eq(1)
                        with m.Elif(d.op == Op.OVERLAY):
                            m.d.comb += [copy.start.eq(1), self.stall.eq(1)]
                            m.next = "COPY"
                        with m.Else():
                            m.d.comb += copy.start.eq(1)
                            next_insn(pc + 1)
                    with m.Case(Op.ENTER):
                        with m.If(copy.busy):
                            m.d.comb += self.stall.eq(1)
                        with m.Else():
                            next_insn(d.imm16)
                    with m.Case(Op.WAIT, Op.HALT):
                        # HALT also waits for a copy, so that a halted machine is quiet.
                        with m.If(~self.tasks_idle | ((d.op == Op.HALT) & copy.busy)):
                            m.d.comb += self.stall.eq(1)
                        with m.Elif(d.op == Op.WAIT):
                            next_insn(pc + 1)
                        with m.Else():
                            m.next = "HALTED"
                    with m.Default():
                        report(Err.ILLEGAL, self.imem_r.data)
            with m.State("LW"):
                m.d.comb += [self.running.eq(1), self.stall.eq(1)]
                with m.If(self.mem.resp_valid):
                    rf.write(m, d.a, self.mem.resp_data.word_select(ea_word, WORD_BITS)
                             if word_sel_bits else self.mem.resp_data[:WORD_BITS])
                    next_insn(pc + 1)
            with m.State("COPY"):
                # The OVERLAY word stays on imem_r.data (no fetch), even if the copy overwrote
                # it: its imm16 is where execution continues.
                m.d.comb += [self.running.eq(1), self.stall.eq(1)]
                with m.If(~copy.busy):
                    next_insn(d.imm16)
            with m.State("HALTED"):
                m.d.comb += self.halted.eq(1)
            with m.State("ERROR"):
                pass

        # The copy engine owns the memory port while it copies: LW and SW wait meanwhile, and
        # an LW's response has come back before the FSM leaves the LW state.
        with m.If(copy.busy):
            m.d.comb += [self.mem.valid.eq(copy.mem.valid), self.mem.addr.eq(copy.mem.addr),
                         self.mem.write.eq(0)]
        m.d.comb += [copy.mem.ready.eq(self.mem.ready & copy.busy),
                     copy.mem.resp_valid.eq(self.mem.resp_valid),
                     copy.mem.resp_data.eq(self.mem.resp_data)]
        return m

