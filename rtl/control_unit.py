"""The control unit: a small scalar core that runs the control program.

It boots by copying ``prog_len`` instruction words from DRAM word 0 into the instruction
memory, then runs from PC 0, one instruction a cycle and a cycle more after a jump (the fetch
reads ahead into an instruction register: :class:`.scalar.InsnFlow`). :attr:`Op.OVERLAY`
copies more words from DRAM over part of the instruction memory at run time and jumps there;
:attr:`Op.PREFETCH` starts the same copy and goes on executing while it runs, and
:attr:`Op.ENTER` waits for it to land and jumps. All copies stream through one pipelined copy
engine (:mod:`.imem_copy`), one word a cycle, one copy at a time; it holds the memory port,
so LW and SW wait for it too.

Besides scalar arithmetic, DRAM word loads/stores and branches it builds tasks:
:attr:`Op.SAVECTX` writes a register into the context slot at the head of the task ring and
:attr:`Op.SAVEPC` commits a task record for that slot and moves the head on. Both stall while
the head slot still belongs to an unfinished task, so a live context is never overwritten.
:attr:`Op.WAIT` and :attr:`Op.HALT` wait until every committed task finished; :attr:`Op.WAITN` until
at most ``imm16`` of them are unfinished.

*Templates* make a task one instruction. :attr:`Op.TPL` selects template ``t``;
:attr:`Op.TPLCTX` writes a word of its context and which SPAWN operand adds to it;
:attr:`Op.TPLPC` stores its module, function and footprint (each range's start may add an
operand too) in the template table. Both live in the control unit. :attr:`Op.SPAWN` hands
template ``t`` and its four operand registers to the *spawn engine* and goes on: the engine
writes the context into the head slot, ``CB_LANES`` words a cycle with the operands added
where the template says, and commits the task with the last row. A SPAWN waits while the
engine is busy with the one before; instructions that need the ring or the CB in order
(SAVECTX, SAVEPC, the template definitions, WAIT, HALT, LW, SW, OVERLAY) wait until it is
idle. After :attr:`Op.TPLTASK` (instead of TPL), TPLCTX also writes the head slot and TPLPC
also commits the task: the definition is a task with the template's own values.
"""

from amaranth import Module, Signal, Const, Mux, Array, Shape, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import WORD_BITS, CB_LANES
from ..sw.isa import Op, Err, Unit, Operand, FIELDS, SPAWN_OPERANDS
from .context_buffer import CbWritePort
from .imem_copy import ImemCopy
from .mem_port import MemPort
from .scalar import RegFile, Decoded, InsnFlow, SplitOp, alu_ops, alu, split_mul, later_wins
from .sequencer import ErrorReport
from .sram import ReadPort, RowWritePort
from .task import TaskPort, RetirePort, PC_BITS, Range, slot_bits
from ..sw.isa import MODULE_UNITS, FOOTPRINT_RANGES

__all__ = ["ControlUnit", "TemplateRecord"]


def TemplateRecord(config):
    """A template in the control unit's table: a task record without its slot (its ranges
    say which SPAWN operand each start adds in ``desc.operand``). Which operand each context
    word adds, and how many context words it has, live only in the LUT RAM beside it
    (``template_lut``)."""
    return data.StructLayout({
        "unit": FIELDS["a"][1], "pc": PC_BITS, "barrier": 1,
        "ranges": data.ArrayLayout(Range, FOOTPRINT_RANGES),
    })


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
    cb_w : Out(CbWritePort)    context writes
    task_pc : Out(PC_BITS)      the instruction that offers ``task`` (for error reports)
    mem : Out(MemPort)
    task : Out(TaskPort)   committed tasks, to the dispatcher
    retire : In(RetirePort).array(len(MODULE_UNITS))   slots given back
    tasks_idle : In(1)     no unfinished task, in the dispatcher or on its way there
    tasks_live : In(range(task_ring + 3))   unfinished tasks the dispatcher holds, and up
                                          to two on their way there (``TaskRegister``)
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
            "cb_w": Out(CbWritePort(config)),
            "task_pc": Out(PC_BITS),
            "mem": Out(MemPort(config)),
            "task": Out(TaskPort(config)),
            "retire": In(RetirePort(config)).array(len(MODULE_UNITS)),
            "tasks_idle": In(1), "tasks_live": In(range(config.task_ring + 3)),
            "err": Out(ErrorReport()),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        bw = cfg.beat_words
        word_sel_bits = (bw - 1).bit_length()
        dram_words = cfg.dram_bytes // 4

        pc = self.pc
        m.submodules.regs = rf = RegFile("ctrl")
        flow = InsnFlow(m, cfg.imem_words, pc, self.imem_r, self.err)
        report, advance, jump = flow.report, flow.advance, flow.jump
        d = Decoded(flow.ir)
        # MUL and the shifts take two cycles (SplitOp): the product, and the shifters behind a
        # register read, were the longest paths into the register file.
        shifts = (Op.SLL, Op.SRL, Op.SRA, Op.SLLI, Op.SRLI, Op.SRAI)
        ops = [op for op in alu_ops(Unit.CTRL) if op not in (Op.MUL, *shifts)]
        result = alu(m, d, rf, ops)
        mul = split_mul(m, rf.read(d.b), rf.read(d.c))
        shift = SplitOp(m, [alu(m, d, rf, shifts)])
        # A branch, OVERLAY and PREFETCH take two cycles at least: the first registers the
        # branch's outcome and target, or the copy's checks (so that a register comparison does
        # not reach the fetch address in its cycle); the second, ``second``, acts on them.
        second, br_taken = Signal(), Signal()
        br_target = Signal((pc + d.simm16).shape())
        ov_code, ov_addr = Signal(Err), Signal(WORD_BITS)

        # -- the task ring: head slot and which slots are live -------------------------------
        ring = cfg.cb_slots
        words = cfg.ctx_slot_words
        lane_bits = max(1, (words - 1).bit_length())
        head = Signal(slot_bits(cfg))
        live = Signal(ring)
        commit = Signal()
        set_mask = Signal(ring)
        clear_mask = Signal(ring)
        m.d.comb += set_mask.eq(Mux(commit, 1 << head, 0))
        m.d.comb += clear_mask.eq(0)
        for r in self.retire:
            with m.If(r.valid):
                m.d.comb += clear_mask.bit_select(r.slot, 1).eq(1)
        m.d.sync += live.eq((live & ~clear_mask) | set_mask)
        with m.If(commit):
            m.d.sync += head.eq(Mux(head == ring - 1, 0, head + 1))
        ring_full = live.bit_select(head, 1)
        # WAIT, WAITN and HALT see the dispatcher's count registered, a cycle late, with a
        # task committed in that cycle added: the dispatcher's idle does not reach the
        # control unit's stall in the cycle it is computed. It may hold a WAIT a cycle more,
        # never release it early.
        idle_seen = Signal()
        live_seen = Signal(range(cfg.task_ring + 4))
        m.d.sync += [idle_seen.eq(self.tasks_idle & ~commit),
                     live_seen.eq(self.tasks_live + commit)]

        ra, rs = rf.read(d.b), rf.read(d.a)
        # LW and SW form their request in registers in their first cycle (the address, its
        # range check, the data) and offer it in the next (state MEM): the register read and
        # the address adder do not share a cycle with the arbiter's grant and the stall.
        ea = Signal(WORD_BITS + 1)       # LW/SW word address
        m.d.comb += ea.eq(ra + d.simm16)
        ea_held, ea_bad = Signal.like(ea), Signal()
        ea_word = ea_held[:word_sel_bits]       # the LW's word within the beat
        mem_req = Signal.like(self.mem.req.payload)
        m.d.comb += self.mem.req.payload.eq(mem_req)
        form_req = Signal()
        with m.If(form_req):
            m.d.sync += [
                ea_held.eq(ea), ea_bad.eq(ea >= dram_words),
                mem_req.write.eq(d.op == Op.SW),
                mem_req.addr.eq(ea >> word_sel_bits),
                mem_req.wdata.eq(rs.replicate(bw)),
                mem_req.wmask.eq(Const(0xF, 4) << (ea[:word_sel_bits] * 4
                                                   if word_sel_bits else 0)),
            ]
        # What SAVEPC commits and TPLPC stores: a barrier (rb = r0) carries no ranges.
        insn_rec = Signal(TemplateRecord(cfg))
        m.d.comb += [insn_rec.unit.eq(d.a), insn_rec.pc.eq(d.imm16),
                     insn_rec.barrier.eq(d.b == 0)]
        footprint = [rf.read(i) for i in flow.indexes_ahead("b", 2 * FOOTPRINT_RANGES)]
        for i, rng in enumerate(insn_rec.ranges):
            with m.If(d.b != 0):
                m.d.comb += [rng.desc.eq(footprint[2 * i]), rng.len.eq(footprint[2 * i + 1])]
        # A range naming a SPAWN operand belongs in a template (TPLPC), not in SAVEPC.
        insn_op_bad = Signal()
        insn_op_desc = Signal(WORD_BITS)
        for rng in insn_rec.ranges:
            with m.If(rng.desc.operand != Operand.NONE):
                m.d.comb += [insn_op_bad.eq(1), insn_op_desc.eq(rng.desc.as_value())]
        m.d.comb += [self.task.payload.unit.eq(insn_rec.unit),
                     self.task.payload.pc.eq(insn_rec.pc),
                     self.task.payload.slot.eq(head),
                     self.task.payload.barrier.eq(insn_rec.barrier),
                     self.task.payload.ranges.eq(insn_rec.ranges),
                     self.task_pc.eq(pc)]

        # -- templates: their records and contexts, the definition in progress ---------------
        n_tpl = cfg.templates
        m.submodules.templates = table = Memory(shape=TemplateRecord(cfg), depth=n_tpl, init=[],
                                                attrs={"ram_style": "block", "no_rw_check": 1})
        table_w = table.write_port()
        table_r = table.read_port()
        # The ranges' starts and operands again, the context words' operands and the context's
        # length, in LUT RAM: the SPAWN's range check and the spawn engine's rows start from
        # them, a flip-flop's output after the read instead of the block RAM's late one.
        lut_shape = data.StructLayout({
            "ranges": data.ArrayLayout(data.StructLayout({
                "lo": Range["desc"].shape["lo"].shape, "operand": Operand}), FOOTPRINT_RANGES),
            "ctx_ops": data.ArrayLayout(Operand, words),
            "words": range(words + 1)})             # context words it has (TPLCTX)
        m.submodules.template_lut = lut = Memory(
            shape=lut_shape, depth=n_tpl, init=[],
            attrs={"ram_style": "distributed", "no_rw_check": 1})
        lut_w, lut_r = lut.write_port(), lut.read_port(domain="comb")
        m.d.comb += [lut_w.addr.eq(table_w.addr), lut_w.en.eq(table_w.en)]
        for i in range(FOOTPRINT_RANGES):
            m.d.comb += [lut_w.data.ranges[i].lo.eq(table_w.data.ranges[i].desc.lo),
                         lut_w.data.ranges[i].operand.eq(table_w.data.ranges[i].desc.operand)]
        rows = words // CB_LANES                # rows of a slot, of a template's context
        lb = (CB_LANES - 1).bit_length()
        m.submodules.template_ctx = tctx = Memory(shape=unsigned(CB_LANES * WORD_BITS),
                                                  depth=n_tpl * rows, init=[],
                                                  attrs={"no_rw_check": 1})
        tctx_w = tctx.write_port(granularity=WORD_BITS)
        tctx_r = tctx.read_port()
        defined = Signal(n_tpl)
        tpl_idx = Signal(range(n_tpl))          # the template TPLCTX / TPLPC define
        tpl_task = Signal()                     # ... and whether they build a task too
        ctx_ops = Signal(data.ArrayLayout(Operand, words))
        ctx_words = Signal(range(words + 1))
        m.d.comb += [table_w.addr.eq(tpl_idx), table_w.data.eq(insn_rec),
                     lut_w.data.ctx_ops.eq(ctx_ops), lut_w.data.words.eq(ctx_words),
                     tctx_w.addr.eq(tpl_idx * rows + (d.off[:lane_bits] >> lb)),
                     tctx_w.data.eq(rs.replicate(CB_LANES))]

        # -- the spawn engine: a SPAWN's context into the head slot, CB_LANES words a cycle ------
        sp_busy = Signal()
        sp_pc = Signal(PC_BITS)
        sp_tmpl = Signal(range(n_tpl))
        sp_ops = Signal(data.ArrayLayout(WORD_BITS, SPAWN_OPERANDS))
        sp_row = Signal(range(rows + 1))        # the row on tctx_r.data, next to write
        sp_enter = Signal()
        sp_write = Signal()
        sp_commit = Signal()
        # The engine takes the next SPAWN in the cycle it commits. Free of the malformed-range
        # check (the template read, an adder, a comparison): in a cycle where that check
        # fails, the machine stops anyway, whatever the SPAWN below does.
        engine_free = Signal()
        tpl = table_r.data                      # read when the SPAWN enters, held
        m.d.comb += [table_r.addr.eq(d.tmpl), table_r.en.eq(sp_enter),
                     lut_r.addr.eq(d.tmpl)]
        # The LUT RAM's word, registered as the SPAWN enters, and the operand each range's
        # start adds, chosen then from the SPAWN's operands: the engine's sums start from
        # flip-flops, not behind a multiplexer of the operands.
        tpl_lut = Signal(lut_shape)
        sp_start_op = Signal(data.ArrayLayout(WORD_BITS, FOOTPRINT_RANGES))
        op_bits = Shape.cast(Operand).width     # an operand field; NONE (0) adds nothing

        def by_operand(values):
            """``values`` (A .. D's) indexed by an operand field."""
            return Array([Const(0, WORD_BITS)] + list(values)
                         + [Const(0, WORD_BITS)] * ((1 << op_bits) - 1 - SPAWN_OPERANDS))
        spawn_operand = by_operand(rf.read(reg) for reg in (d.a, d.b, d.c, d.d))
        with m.If(sp_enter):
            m.d.sync += tpl_lut.eq(lut_r.data)
            for i in range(FOOTPRINT_RANGES):
                m.d.sync += sp_start_op[i].eq(spawn_operand[lut_r.data.ranges[i].operand])
        # (a read port's enable is 1 unless driven)
        with m.If(sp_enter):
            m.d.comb += [tctx_r.addr.eq(d.tmpl * rows), tctx_r.en.eq(1)]
        with m.Elif(sp_write):
            m.d.comb += [tctx_r.addr.eq(sp_tmpl * rows + sp_row + 1), tctx_r.en.eq(1)]
        with m.Else():
            m.d.comb += tctx_r.en.eq(0)
        operand = by_operand(sp_ops[i] for i in range(SPAWN_OPERANDS))
        sp_data = Signal(CB_LANES * WORD_BITS)  # the row's words with their operands
        sp_mask = Signal(CB_LANES)              # the row's words the template has
        sp_last = Signal()                      # the row is the context's last (or none)
        ops_of_row = Array([Array(tpl_lut.ctx_ops[r * CB_LANES + j]
                                  for j in range(CB_LANES))
                            for r in range(rows)] + [Array([Const(0, op_bits)] * CB_LANES)])
        for j in range(CB_LANES):
            word = tctx_r.data.word_select(j, WORD_BITS)
            m.d.comb += [
                sp_data.word_select(j, WORD_BITS).eq(word + operand[ops_of_row[sp_row][j]]),
                sp_mask[j].eq((sp_row << lb) + j < tpl_lut.words)]
        m.d.comb += sp_last.eq(((sp_row + 1) << lb) >= tpl_lut.words)
        m.d.comb += engine_free.eq(~sp_busy | (~ring_full & sp_last & self.task.ready))
        sp_ranges = Signal(data.ArrayLayout(Range, FOOTPRINT_RANGES))
        lo_bits = len(sp_ranges[0].desc.lo)
        bad_ranges = []
        for i in range(FOOTPRINT_RANGES):
            t_rng, t_start, rng = tpl.ranges[i], tpl_lut.ranges[i], sp_ranges[i]
            lo = Signal(WORD_BITS, name=f"spawn_lo{i}")
            # A template's start is signed (an operand may be the end of what it covers).
            m.d.comb += [lo.eq(t_start.lo.as_signed() + sp_start_op[i]),
                         rng.desc.space.eq(t_rng.desc.space), rng.desc.write.eq(t_rng.desc.write),
                         rng.desc.lo.eq(lo), rng.len.eq(t_rng.len)]
            # A start past the field (or below zero) is a malformed range.
            bad_ranges.append((lo[lo_bits:] != 0, (lo,)))
        # The last malformed range's start, masked and ORed, not a chain of multiplexers.
        sp_bad, (sp_bad_lo,) = later_wins(m, bad_ranges, "spawn_bad")
        with m.If(sp_busy):
            m.d.comb += [self.task.payload.unit.eq(tpl.unit), self.task.payload.pc.eq(tpl.pc),
                         self.task.payload.barrier.eq(tpl.barrier),
                         self.task.payload.ranges.eq(sp_ranges), self.task_pc.eq(sp_pc)]
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
                    jump(0)
            with m.State("EXEC"):
                m.d.comb += self.running.eq(1)
                # The spawn engine writes the head slot once it is free, a word a cycle, then
                # commits the task; a SPAWN below may start the next one in the same cycle.
                with m.If(sp_busy & ~ring_full):
                    m.d.comb += [self.cb_w.row.eq(head * rows + sp_row),
                                 self.cb_w.mask.eq(sp_mask), self.cb_w.data.eq(sp_data)]
                    with m.If(~sp_last):
                        m.d.comb += sp_write.eq(1)
                        m.d.sync += sp_row.eq(sp_row + 1)
                    with m.Elif(~sp_bad):
                        # The last row goes with the commit and lands the cycle after
                        # (context_buffer.py): no sequencer reads the slot before then.
                        m.d.comb += self.task.valid.eq(1)
                        with m.If(self.task.ready):
                            m.d.comb += [sp_commit.eq(1), commit.eq(1)]
                            m.d.sync += sp_busy.eq(0)
                with m.If(~flow.ready):         # a fill cycle after a jump
                    flow.fill()
                    m.d.comb += self.stall.eq(1)
                with m.Else():
                    with m.Switch(d.op):
                        with m.Case(*ops):
                            rf.write(m, d.a, result)
                            advance()
                        with m.Case(Op.MUL):
                            mul.execute(rf, d.a, advance, self.stall)
                        with m.Case(*shifts):
                            shift.execute(rf, d.a, advance, self.stall)
                        with m.Case(Op.NOP):
                            advance()
                        with m.Case(Op.BEQ, Op.BNE, Op.BLT, Op.BGE, Op.BLTU, Op.BGEU):
                            with m.If(second):
                                m.d.sync += second.eq(0)
                                with m.If(br_taken):
                                    jump(br_target)
                                with m.Else():
                                    advance()
                            with m.Else():
                                m.d.comb += self.stall.eq(1)
                                m.d.sync += [second.eq(1), br_taken.eq(taken),
                                             br_target.eq(pc + d.simm16)]
                        with m.Case(Op.JAL):
                            rf.write(m, d.a, pc + 1)
                            jump(pc + d.simm21)
                        with m.Case(Op.JALR):
                            rf.write(m, d.a, pc + 1)
                            jump(ra.as_signed() + d.simm16)
                        with m.Case(Op.LW, Op.SW):
                            m.d.comb += self.stall.eq(1)
                            # The copy holds the memory port; the spawn engine must not
                            # write the ring meanwhile (the MEM state does not run it).
                            with m.If(~copy.busy & ~sp_busy):
                                m.d.comb += form_req.eq(1)
                                m.next = "MEM"
                        with m.Case(Op.SAVECTX):
                            with m.If(d.imm16 >= words):
                                report(Err.CTX_RANGE, d.imm16)
                            with m.Elif(ring_full | sp_busy):
                                m.d.comb += self.stall.eq(1)
                            with m.Else():
                                m.d.comb += [self.cb_w.row.eq(head * rows
                                                              + (d.imm16[:lane_bits] >> lb)),
                                             self.cb_w.mask.eq(1 << d.imm16[:lb]),
                                             self.cb_w.data.eq(rs.replicate(CB_LANES))]
                                advance()
                        with m.Case(Op.SAVEPC):
                            with m.If(insn_op_bad):         # a template's range, not a task's
                                report(Err.BAD_TASK, insn_op_desc)
                            with m.Elif(ring_full | sp_busy):
                                m.d.comb += self.stall.eq(1)
                            with m.Else():
                                m.d.comb += self.task.valid.eq(1)
                                with m.If(self.task.ready):
                                    m.d.comb += commit.eq(1)
                                    advance()
                                with m.Else():
                                    m.d.comb += self.stall.eq(1)
                        with m.Case(Op.TPL, Op.TPLTASK):
                            with m.If(d.imm16 >= n_tpl):
                                report(Err.BAD_PARAM, d.imm16)
                            with m.Elif(sp_busy):
                                m.d.comb += self.stall.eq(1)
                            with m.Else():
                                m.d.sync += [tpl_idx.eq(d.imm16), tpl_task.eq(d.op == Op.TPLTASK),
                                             defined.bit_select(d.imm16[:len(tpl_idx)], 1).eq(0),
                                             ctx_ops.eq(0), ctx_words.eq(0)]
                                advance()
                        with m.Case(Op.TPLCTX):
                            with m.If(d.off >= words):
                                report(Err.CTX_RANGE, d.off)
                            with m.Elif(d.c > Operand.D.value):
                                report(Err.BAD_PARAM, d.c)
                            with m.Elif(sp_busy | (tpl_task & ring_full)):
                                m.d.comb += self.stall.eq(1)
                            with m.Else():
                                m.d.comb += tctx_w.en.eq(1 << d.off[:lb])
                                with m.If(tpl_task):         # the word of the task, too
                                    m.d.comb += [self.cb_w.row.eq(head * rows
                                                                  + (d.off[:lane_bits] >> lb)),
                                                 self.cb_w.mask.eq(1 << d.off[:lb]),
                                                 self.cb_w.data.eq(rs.replicate(CB_LANES))]
                                m.d.sync += ctx_ops[d.off[:lane_bits]].eq(d.c)
                                with m.If(d.off >= ctx_words):
                                    m.d.sync += ctx_words.eq(d.off + 1)
                                advance()
                        with m.Case(Op.TPLPC):
                            bad_op = Signal()
                            for rng in insn_rec.ranges:
                                with m.If(rng.desc.operand.as_value() > Operand.D.value):
                                    m.d.comb += bad_op.eq(1)
                            with m.If(bad_op):
                                report(Err.BAD_PARAM, d.b)
                            with m.Elif(sp_busy | (tpl_task & ring_full)):
                                m.d.comb += self.stall.eq(1)
                            with m.Elif(tpl_task):
                                # The task as defined: each range at the template's own start.
                                for rng in self.task.payload.ranges:
                                    m.d.comb += rng.desc.operand.eq(Operand.NONE)
                                m.d.comb += self.task.valid.eq(1)
                                with m.If(self.task.ready):
                                    m.d.comb += [table_w.en.eq(1), commit.eq(1)]
                                    m.d.sync += defined.bit_select(tpl_idx, 1).eq(1)
                                    advance()
                                with m.Else():
                                    m.d.comb += self.stall.eq(1)
                            with m.Else():
                                m.d.comb += table_w.en.eq(1)
                                m.d.sync += defined.bit_select(tpl_idx, 1).eq(1)
                                advance()
                        with m.Case(Op.SPAWN):
                            with m.If(d.tmpl >= n_tpl):
                                report(Err.BAD_PARAM, d.tmpl)
                            with m.Elif(~defined.bit_select(d.tmpl[:len(tpl_idx)], 1)):
                                report(Err.BAD_TASK, d.tmpl)
                            with m.Elif(~engine_free):
                                m.d.comb += self.stall.eq(1)
                            with m.Else():
                                m.d.comb += sp_enter.eq(1)
                                m.d.sync += [sp_busy.eq(1), sp_pc.eq(pc), sp_tmpl.eq(d.tmpl),
                                             sp_row.eq(0)]
                                for i, reg in enumerate((d.a, d.b, d.c, d.d)):
                                    m.d.sync += sp_ops[i].eq(rf.read(reg))
                                advance()
                        with m.Case(Op.OVERLAY, Op.PREFETCH):
                            # Checked before a copy under way has landed: nothing moves on an
                            # error. The first cycle registers the checks.
                            with m.If(~second):
                                m.d.comb += self.stall.eq(1)
                                m.d.sync += [second.eq(1), ov_code.eq(Err.NONE), ov_addr.eq(0)]
                                with m.If(brb == 0):
                                    m.d.sync += ov_code.eq(Err.BAD_PARAM)
                                with m.Elif(src_end > dram_words):
                                    m.d.sync += [ov_code.eq(Err.DRAM_RANGE),
                                                 ov_addr.eq(src_end - 1)]
                                with m.Elif(dst_end > cfg.imem_words):
                                    m.d.sync += [ov_code.eq(Err.PC_RANGE),
                                                 ov_addr.eq(dst_end - 1)]
                            with m.Elif(ov_code != Err.NONE):
                                report(ov_code, ov_addr)
                            with m.Elif(copy.busy | sp_busy):
                                m.d.comb += self.stall.eq(1)
                            with m.Elif(d.op == Op.OVERLAY):
                                m.d.comb += [copy.start.eq(1), self.stall.eq(1)]
                                m.d.sync += second.eq(0)
                                m.next = "COPY"
                            with m.Else():
                                m.d.comb += copy.start.eq(1)
                                m.d.sync += second.eq(0)
                                advance()
                        with m.Case(Op.ENTER):
                            with m.If(copy.busy):
                                m.d.comb += self.stall.eq(1)
                            with m.Else():
                                jump(d.imm16)
                        with m.Case(Op.WAIT, Op.HALT):
                            # HALT also waits for a copy, so that a halted machine is quiet.
                            with m.If(~idle_seen | sp_busy
                                      | ((d.op == Op.HALT) & copy.busy)):
                                m.d.comb += self.stall.eq(1)
                            with m.Elif(d.op == Op.WAIT):
                                advance()
                            with m.Else():
                                m.next = "HALTED"
                        with m.Case(Op.WAITN):
                            with m.If((live_seen > d.imm16) | sp_busy):
                                m.d.comb += self.stall.eq(1)
                            with m.Else():
                                advance()
                        with m.Default():
                            report(Err.ILLEGAL, flow.ir)
                # The spawn engine's error wins over the instruction's (it is older).
                with m.If(sp_busy & sp_bad):
                    report(Err.BAD_TASK, sp_bad_lo, at=sp_pc)
            with m.State("MEM"):
                # The cycle the memory takes the request is the instruction's one active cycle
                # (the first, which formed it, stalls): an SW retires then, an LW waits for its
                # data in the LW state.
                m.d.comb += [self.running.eq(1), self.stall.eq(~self.mem.req.ready)]
                with m.If(ea_bad):
                    report(Err.DRAM_RANGE, ea_held)
                with m.Else():
                    m.d.comb += self.mem.req.valid.eq(1)
                    with m.If(self.mem.req.ready):
                        with m.If(mem_req.write):
                            advance()
                        with m.Else():
                            m.next = "LW"
            with m.State("LW"):
                m.d.comb += [self.running.eq(1), self.stall.eq(1)]
                with m.If(self.mem.resp_valid):
                    rf.write(m, d.a, self.mem.resp_data.word_select(ea_word, WORD_BITS)
                             if word_sel_bits else self.mem.resp_data[:WORD_BITS])
                    advance()
            with m.State("COPY"):
                # The OVERLAY word stays in the instruction register, even if the copy overwrote
                # it in the memory: its imm16 is where execution continues.
                m.d.comb += [self.running.eq(1), self.stall.eq(1)]
                with m.If(~copy.busy):
                    jump(d.imm16)
            with m.State("HALTED"):
                m.d.comb += self.halted.eq(1)
            with m.State("ERROR"):
                pass

        # The copy engine owns the memory port while it copies: LW and SW wait meanwhile, and
        # an LW's response has come back before the FSM leaves the LW state.
        with m.If(copy.busy):
            m.d.comb += [self.mem.req.valid.eq(copy.mem.req.valid),
                         self.mem.req.payload.addr.eq(copy.mem.req.payload.addr),
                         self.mem.req.payload.write.eq(0)]
        m.d.comb += [copy.mem.req.ready.eq(self.mem.req.ready & copy.busy),
                     copy.mem.resp_valid.eq(self.mem.resp_valid),
                     copy.mem.resp_data.eq(self.mem.resp_data)]
        return m

