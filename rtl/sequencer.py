"""A module sequencer: runs module functions (tasks) on one functional unit.

On a task it fetches from the task's PC, a fill cycle first (:class:`.scalar.InsnFlow`; module
functions lie in the first ``func_words`` instructions, which it reads from its own copy: a
PC past them is :attr:`Err.PC_RANGE`),
reads its parameters from the task's context slot (:attr:`Op.LDC`), computes with the scalar
subset of the ISA and hands macro-instructions to its unit through a command register. It
moves on as soon as the register has room, and the unit takes the command from there, a cycle
later at the earliest (a DMA engine takes the next while the last one's data is still under
way).

A task's macro-instructions and END wait for ``go``: the dispatcher issues a task before the
older tasks it conflicts with have finished, so that its prologue (context loads, address
arithmetic) runs meanwhile. :attr:`Op.END` *releases* the task: the sequencer takes the next
task at once, while up to :data:`~.task.PENDING` released tasks wait for their last
macro-instructions; a task is *done* when every macro-instruction it issued has finished
(units finish theirs in order). A unit's error is reported with the PC of the
macro-instruction the unit last took (units check a command before taking the next).
"""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import WORD_BITS
from ..sw.isa import Op, OPS, Err, Unit, unit_params
from .scalar import RegFile, Decoded, InsnFlow, alu_ops, alu, split_mul
from .sram import ReadPort
from .task import IssuePort, PC_BITS, PENDING
from .unit_port import UnitPort, MacroCmd

__all__ = ["ModuleSequencer", "ErrorReport"]


def ErrorReport():
    """An error, from the reporter's side."""
    return wiring.Signature({"valid": Out(1), "code": Out(Err), "pc": Out(PC_BITS),
                             "addr": Out(WORD_BITS)})


class ModuleSequencer(wiring.Component):
    """Members
    -------
    task : In(IssuePort)  a task for this module: its function's PC and context slot
    go : In(1)           the task may act: its macro-instructions and END wait for it (the
                         dispatcher holds it while an older task it conflicts with is unfinished;
                         END waits for it in an earlier cycle of the task)
    released : Out(1)    a task's END ran (pulse)
    done : Out(1)        the oldest released task's last macro-instruction finished (pulse)
    busy : Out(1)        a task is running or finishing
    ctx_load : Out(1)    this cycle waits on the context buffer
    imem : Out(ReadPort) instruction fetch, from the first ``func_words`` instructions
    cb : Out(ReadPort)   context reads
    unit : Out(UnitPort) macro-instructions
    err : Out(ErrorReport)
    """

    def __init__(self, config, unit):
        self._config = config
        self._unit = Unit(unit)
        super().__init__({
            "task": In(IssuePort(config)),
            "go": In(1), "released": Out(1), "done": Out(1), "busy": Out(1), "ctx_load": Out(1),
            "imem": Out(ReadPort((config.func_words - 1).bit_length(), WORD_BITS)),
            "cb": Out(ReadPort((config.cb_words - 1).bit_length(), WORD_BITS)),
            "unit": Out(UnitPort()),
            "err": Out(ErrorReport()),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        pc = Signal(PC_BITS)
        slot = Signal.like(self.task.payload.slot)
        m.submodules.regs = rf = RegFile(self._unit.name.lower())
        flow = InsnFlow(m, cfg.func_words, pc, self.imem, self.err)
        report, advance = flow.report, flow.advance
        d = Decoded(flow.ir)
        assert Op.MUL in alu_ops(self._unit)
        ops = [op for op in alu_ops(self._unit) if op != Op.MUL]      # MUL: two cycles
        result = alu(m, d, rf, ops)
        mul = split_mul(m, rf.read(d.b), rf.read(d.c))
        macro_ops = [op for op, (_, units) in OPS.items()
                     if units == {self._unit} and op not in (Op.LDC, Op.END)]

        # The command register: a macro-instruction goes into it (``issue``) and the unit takes
        # it from there, a cycle later at the earliest, so that the sequencer's fetch and
        # register reads and the unit's command logic do not share a cycle. While it is full
        # and the unit does not take, the next macro-instruction waits.
        cmd, cmd_valid, cmd_pc = Signal(MacroCmd), Signal(), Signal(PC_BITS)
        issue = Signal()
        macro_pc = Signal(PC_BITS)                      # of the command the unit last took
        taken = self.unit.macro.valid & self.unit.macro.ready
        room = ~cmd_valid | self.unit.macro.ready
        # A unit reports an error from registers, only while it is not ready (UnitPort), and
        # the sequencer's report is registered too (InsnFlow.report): the command stays
        # offered in the cycle the unit reports, and none moves after it (ERROR).
        stopped = Signal()
        m.d.comb += [self.unit.macro.valid.eq(cmd_valid & ~stopped),
                     self.unit.macro.payload.eq(cmd)]
        with m.If(taken):
            m.d.sync += [cmd_valid.eq(0), macro_pc.eq(cmd_pc)]
        params = flow.indexes_ahead("b", unit_params(self._unit))
        with m.If(issue):
            m.d.sync += [cmd_valid.eq(1), cmd_pc.eq(pc), cmd.op.eq(d.op), cmd.a.eq(d.a),
                         cmd.imm.eq(d.imm16)]
            # Only the registers the unit reads: each is a read port, a copy of the registers
            # in LUT RAM (a DMA's sequencer reads 9, not the PFU's 15).
            m.d.sync += [cmd.params[i].eq(rf.read(j)) for i, j in enumerate(params)]

        # Macro-instructions issued and finished, counted modulo 256; a released task is done
        # when the finished count reaches the issued count at its END (its *mark*).
        issued_n, done_n = Signal(8), Signal(8)
        marks = [Signal(8, name=f"mark{k}") for k in range(PENDING)]
        nmarks = Signal(range(PENDING + 1))
        m.d.sync += [issued_n.eq(issued_n + issue), done_n.eq(done_n + self.unit.done)]
        finish = (nmarks != 0) & (marks[0] == done_n)
        release = Signal()
        m.d.comb += [self.done.eq(finish), self.released.eq(release)]
        m.d.sync += nmarks.eq(nmarks + release - finish)
        with m.If(finish):
            for k in range(PENDING - 1):
                m.d.sync += marks[k].eq(marks[k + 1])
        with m.If(release):
            for k in range(PENDING):
                with m.If(nmarks - finish == k):
                    m.d.sync += marks[k].eq(issued_n)

        def unit_error():
            """A unit's error overrides what the sequencer was doing (last, so it wins), in
            every state: the unit may take a command from the register after the sequencer
            moved on."""
            with m.If(self.unit.err):
                report(self.unit.err_code, self.unit.err_addr, at=macro_pc)

        m.d.comb += self.cb.addr.eq(slot * cfg.ctx_slot_words + d.imm16)

        # END waits for ``go`` as seen in an earlier cycle of the task: once high, ``go`` stays
        # high until the task is released (its data dependencies only clear; docs/formal.md
        # proves it), so END waits a cycle more only where ``go`` rises in its own cycle, and
        # the dispatcher's ``go`` does not come back to its ``released`` in one cycle.
        go_seen = Signal()
        with m.If(self.go):
            m.d.sync += go_seen.eq(1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += go_seen.eq(0)
                m.d.comb += [self.task.ready.eq(1), self.busy.eq(nmarks != 0)]
                with m.If(self.task.valid):
                    m.d.sync += slot.eq(self.task.payload.slot)
                    flow.jump(self.task.payload.pc)
                unit_error()            # the last command of a released task, say
            with m.State("EXEC"):
                m.d.comb += self.busy.eq(1)
                with m.If(~flow.ready):
                    flow.fill()
                with m.Else():
                    with m.Switch(d.op):
                        with m.Case(*ops):
                            rf.write(m, d.a, result)
                            advance()
                        with m.Case(Op.MUL):
                            mul.execute(rf, d.a, advance)
                        with m.Case(Op.NOP):
                            advance()
                        with m.Case(Op.LDC):
                            with m.If(d.imm16 >= cfg.ctx_slot_words):
                                report(Err.CTX_RANGE, d.imm16)
                            with m.Else():
                                m.d.comb += self.cb.en.eq(1)
                                m.next = "LDC"
                        with m.Case(*macro_ops):
                            with m.If(room & self.go):
                                m.d.comb += issue.eq(1)
                                advance()
                        with m.Case(Op.END):
                            with m.If((nmarks != PENDING) & go_seen):
                                m.d.comb += release.eq(1)
                                m.next = "IDLE"
                        with m.Default():
                            report(Err.ILLEGAL, flow.ir)
                unit_error()
            with m.State("LDC"):
                m.d.comb += [self.busy.eq(1), self.ctx_load.eq(1)]
                rf.write(m, d.a, self.cb.data)
                advance()
                unit_error()
            with m.State("ERROR"):
                m.d.comb += stopped.eq(1)
        return m
