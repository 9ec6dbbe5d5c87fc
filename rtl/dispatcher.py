"""The dispatch controller: issues committed task records to the module sequencers.

This version issues one task at a time and waits for it to finish (serial execution); it checks
every record and stops the machine with :attr:`Err.BAD_TASK` on one that names no module.
"""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..sw.isa import Err, MODULE_UNITS
from .sequencer import ErrorReport
from .task import TaskPort, RetirePort, TaskRecord

__all__ = ["Dispatcher"]


class Dispatcher(wiring.Component):
    """Members
    -------
    task : In(TaskPort)                         committed tasks from the control unit
    issue : Out(TaskPort).array(n_modules)      to the module sequencers
    finished : In(n_modules)                    a module's task ended (pulses)
    retire : Out(RetirePort).array(n_modules)   slots given back to the ring
    idle : Out(1)                               no unfinished task
    err : Out(ErrorReport)
    """

    def __init__(self, config):
        self._config = config
        n = len(MODULE_UNITS)
        super().__init__({
            "task": In(TaskPort(config)),
            "issue": Out(TaskPort(config)).array(n),
            "finished": In(n),
            "retire": Out(RetirePort(config)).array(n),
            "idle": Out(1),
            "err": Out(ErrorReport()),
        })

    def elaborate(self, platform):
        m = Module()
        cur = Signal(TaskRecord(self._config))
        for idx, port in enumerate(self.issue):
            m.d.comb += port.payload.eq(cur)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.idle.eq(1), self.task.ready.eq(1)]
                with m.If(self.task.valid):
                    with m.If(self.task.payload.unit >= len(MODULE_UNITS)):
                        m.d.comb += [self.err.valid.eq(1), self.err.code.eq(Err.BAD_TASK),
                                     self.err.pc.eq(self.task.payload.pc),
                                     self.err.addr.eq(self.task.payload.unit)]
                        m.next = "ERROR"
                    with m.Else():
                        m.d.sync += cur.eq(self.task.payload)
                        m.next = "ISSUE"
            with m.State("ISSUE"):
                for idx, port in enumerate(self.issue):
                    with m.If(cur.unit == idx):
                        m.d.comb += port.valid.eq(1)
                        with m.If(port.ready):
                            m.next = "RUN"
            with m.State("RUN"):
                for idx, port in enumerate(self.retire):
                    with m.If((cur.unit == idx) & self.finished[idx]):
                        m.d.comb += [port.valid.eq(1), port.slot.eq(cur.slot)]
                        m.next = "IDLE"
            with m.State("ERROR"):
                pass
        return m
