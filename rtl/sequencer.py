"""A module sequencer: runs module functions (tasks) on one functional unit.

On a task it fetches from the task's PC (module functions lie in the first ``func_words``
instructions, which it reads from its own copy: a PC past them is :attr:`Err.PC_RANGE`),
reads its parameters from the task's context slot (:attr:`Op.LDC`), computes with the scalar
subset of the ISA and hands macro-instructions to its unit. It moves on as soon as the unit
has taken one (a DMA engine takes the next while the last one's data is still under way).

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
from ..sw.isa import Op, OPS, Err, Unit
from .scalar import RegFile, Decoded, InsnFlow, alu_ops, alu
from .sram import ReadPort
from .task import IssuePort, PC_BITS, PENDING
from .unit_port import UnitPort, MAX_PARAMS

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
                         dispatcher holds it while an older task it conflicts with is unfinished)
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
        d = Decoded(self.imem.data)
        ops = alu_ops(self._unit)
        result = alu(m, d, rf, ops)
        macro_ops = [op for op, (_, units) in OPS.items()
                     if units == {self._unit} and op not in (Op.LDC, Op.END)]

        flow = InsnFlow(m, cfg.func_words, pc, self.imem, self.err)
        report, next_insn = flow.report, flow.next

        # Macro-instructions taken and finished, counted modulo 256; a released task is done
        # when the finished count reaches the taken count at its END (its *mark*).
        taken_n, done_n = Signal(8), Signal(8)
        marks = [Signal(8, name=f"mark{k}") for k in range(PENDING)]
        nmarks = Signal(range(PENDING + 1))
        macro_pc = Signal(PC_BITS)
        taken = self.unit.macro.valid & self.unit.macro.ready
        m.d.sync += [taken_n.eq(taken_n + taken), done_n.eq(done_n + self.unit.done)]
        with m.If(taken):
            m.d.sync += macro_pc.eq(pc)
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
                    m.d.sync += marks[k].eq(taken_n)

        def unit_error():
            """A unit's error overrides what the sequencer was doing (last, so it wins)."""
            with m.If(self.unit.err):
                report(self.unit.err_code, self.unit.err_addr, at=macro_pc)

        m.d.comb += [
            self.unit.macro.payload.op.eq(d.op),
            self.unit.macro.payload.a.eq(d.a),
            self.unit.macro.payload.imm.eq(d.imm16),
            self.cb.addr.eq(slot * cfg.ctx_slot_words + d.imm16),
        ]
        m.d.comb += [self.unit.macro.payload.params[i].eq(v)
                     for i, v in enumerate(rf.read_block(d.b, MAX_PARAMS))]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.task.ready.eq(1), self.busy.eq(nmarks != 0)]
                with m.If(self.task.valid):
                    m.d.sync += slot.eq(self.task.payload.slot)
                    next_insn(self.task.payload.pc)
            with m.State("EXEC"):
                m.d.comb += self.busy.eq(1)
                with m.Switch(d.op):
                    with m.Case(*ops):
                        rf.write(m, d.a, result)
                        next_insn(pc + 1)
                    with m.Case(Op.NOP):
                        next_insn(pc + 1)
                    with m.Case(Op.LDC):
                        with m.If(d.imm16 >= cfg.ctx_slot_words):
                            report(Err.CTX_RANGE, d.imm16)
                        with m.Else():
                            m.d.comb += self.cb.en.eq(1)
                            m.next = "LDC"
                    with m.Case(*macro_ops):
                        m.d.comb += self.unit.macro.valid.eq(~self.unit.err & self.go)
                        with m.If(self.unit.macro.ready & self.go):
                            next_insn(pc + 1)
                    with m.Case(Op.END):
                        with m.If((nmarks != PENDING) & self.go):
                            m.d.comb += release.eq(1)
                            m.next = "IDLE"
                    with m.Default():
                        report(Err.ILLEGAL, self.imem.data)
                unit_error()
            with m.State("LDC"):
                m.d.comb += [self.busy.eq(1), self.ctx_load.eq(1)]
                rf.write(m, d.a, self.cb.data)
                next_insn(pc + 1)
                unit_error()
            with m.State("ERROR"):
                pass
        return m
