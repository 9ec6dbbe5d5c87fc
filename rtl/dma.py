"""The DMA engines: 2-D strided transfers between DRAM and the global buffer.

A transfer moves ``rows`` rows of ``row_beats`` beats; row ``i`` starts at DRAM beat
``dram_addr + i * dram_stride`` and at bank beat ``buf_addr + i * buf_stride``
(parameters in :data:`dypipe.sw.isa.DMA_PARAMS` order). Both address ranges are checked
before the first beat moves, so a bad transfer never touches memory.
"""

from amaranth import Module, Signal, Cat, Const, Mux
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..config import WORD_BITS
from ..sw.isa import Buf, Err, DMA_PARAMS
from .global_buffer import DmaReadPort, DmaWritePort, bank_beats
from .mem_port import MemPort
from .unit_port import UnitPort

__all__ = ["LoadDMA", "StoreDMA"]


class _Transfer:
    """Latched parameters of one transfer plus its range check (shared by both engines)."""

    def __init__(self, m, config, port):
        self.config = config
        p = port.payload.params
        names = dict(zip(DMA_PARAMS, range(len(DMA_PARAMS))))
        self.buf = Signal(port.payload.a.shape(), name="xfer_buf")
        self.regs = {name: Signal(WORD_BITS, name=f"xfer_{name}") for name in DMA_PARAMS}
        self.accept = Signal(name="xfer_accept")
        with m.If(self.accept):
            m.d.sync += self.buf.eq(port.payload.a)
            m.d.sync += [self.regs[name].eq(p[idx]) for name, idx in names.items()]

    def check(self, m):
        """Combinational ``(code, addr)`` of the first problem with the latched transfer."""
        r = self.regs
        code = Signal(Err, name="xfer_err_code")
        addr = Signal(WORD_BITS, name="xfer_err_addr")
        last_dram = Signal(2 * WORD_BITS + 1, name="xfer_last_dram")
        last_buf = Signal(2 * WORD_BITS + 1, name="xfer_last_buf")
        m.d.comb += [
            last_dram.eq(r["dram_addr"] + (r["rows"] - 1) * r["dram_stride"]
                         + r["row_beats"] - 1),
            last_buf.eq(r["buf_addr"] + (r["rows"] - 1) * r["buf_stride"] + r["row_beats"] - 1),
        ]
        limit = Signal(WORD_BITS, name="xfer_buf_beats")
        with m.Switch(self.buf):
            for buf in Buf:
                with m.Case(buf):
                    m.d.comb += limit.eq(bank_beats(self.config, buf))
        with m.If((r["rows"] == 0) | (r["row_beats"] == 0) | (self.buf >= len(Buf))):
            m.d.comb += code.eq(Err.BAD_PARAM)
        with m.Elif(last_dram >= self.config.dram_beats):
            m.d.comb += [code.eq(Err.DRAM_RANGE), addr.eq(last_dram)]
        with m.Elif(last_buf >= limit):
            m.d.comb += [code.eq(Err.BUF_RANGE), addr.eq(last_buf)]
        return code, addr


class _Walker:
    """Steps through the beats of a 2-D transfer: ``addr`` is the current beat, ``step``
    advances it, ``last`` is high on the final beat."""

    def __init__(self, m, name, base, stride, rows, row_beats, start):
        self.addr = Signal(WORD_BITS, name=f"{name}_addr")
        row_base = Signal(WORD_BITS, name=f"{name}_row_base")
        beat = Signal(WORD_BITS, name=f"{name}_beat")
        row = Signal(WORD_BITS, name=f"{name}_row")
        self.step = Signal(name=f"{name}_step")
        self.last = Signal(name=f"{name}_last")
        end_of_row = beat == row_beats - 1
        m.d.comb += [self.addr.eq(row_base + beat),
                     self.last.eq(end_of_row & (row == rows - 1))]
        with m.If(start):
            m.d.sync += [row_base.eq(base), beat.eq(0), row.eq(0)]
        with m.Elif(self.step):
            with m.If(end_of_row):
                m.d.sync += [beat.eq(0), row.eq(row + 1), row_base.eq(row_base + stride)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)


class LoadDMA(wiring.Component):
    """DRAM -> global buffer (:attr:`Op.DLOAD`).

    Members
    -------
    cmd : In(UnitPort)
    mem : Out(MemPort)
    buf : Out(DmaWritePort)
    busy : Out(1)
    """

    def __init__(self, config):
        self._config = config
        super().__init__({"cmd": In(UnitPort()), "mem": Out(MemPort(config)),
                          "buf": Out(DmaWritePort(config)), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        x = _Transfer(m, self._config, self.cmd)
        r = x.regs
        start = Signal()
        issue = _Walker(m, "issue", r["dram_addr"], r["dram_stride"], r["rows"],
                        r["row_beats"], start)
        recv = _Walker(m, "recv", r["buf_addr"], r["buf_stride"], r["rows"],
                       r["row_beats"], start)
        issuing = Signal()
        code, addr = x.check(m)

        m.d.comb += [
            self.mem.write.eq(0),
            self.mem.addr.eq(issue.addr),
            issue.step.eq(self.mem.valid & self.mem.ready),
            recv.step.eq(self.mem.resp_valid),
            self.buf.buf.eq(x.buf),
            self.buf.addr.eq(recv.addr),
            self.buf.data.eq(self.mem.resp_data),
            self.buf.en.eq(self.mem.resp_valid),
        ]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.cmd.ready.eq(1), x.accept.eq(self.cmd.valid)]
                with m.If(self.cmd.valid):
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.busy.eq(1)
                with m.If(code != Err.NONE):
                    m.d.comb += [self.cmd.err.eq(1), self.cmd.err_code.eq(code),
                                 self.cmd.err_addr.eq(addr)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += start.eq(1)
                    m.d.sync += issuing.eq(1)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [self.busy.eq(1), self.mem.valid.eq(issuing)]
                with m.If(issue.step & issue.last):
                    m.d.sync += issuing.eq(0)
                with m.If(recv.step & recv.last):
                    m.d.comb += self.cmd.done.eq(1)
                    m.next = "IDLE"
        return m


class StoreDMA(wiring.Component):
    """Global buffer -> DRAM (:attr:`Op.DSTORE`).

    Bank reads run up to :attr:`DEPTH` beats ahead of the memory port, so the store streams one
    beat per cycle when the port grants it.

    Members
    -------
    cmd : In(UnitPort)
    mem : Out(MemPort)
    buf : Out(DmaReadPort)
    busy : Out(1)
    """

    DEPTH = 4

    def __init__(self, config):
        self._config = config
        super().__init__({"cmd": In(UnitPort()), "mem": Out(MemPort(config)),
                          "buf": Out(DmaReadPort(config)), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        x = _Transfer(m, cfg, self.cmd)
        r = x.regs
        start = Signal()
        rd = _Walker(m, "rd", r["buf_addr"], r["buf_stride"], r["rows"], r["row_beats"], start)
        wr = _Walker(m, "wr", r["dram_addr"], r["dram_stride"], r["rows"], r["row_beats"],
                     start)
        code, addr = x.check(m)

        # Beats read from the bank wait here, with their DRAM address, for the memory port.
        m.submodules.fifo = fifo = SyncFIFO(width=cfg.beat_bits + cfg.dram_addr_bits,
                                            depth=self.DEPTH)
        reading = Signal()
        in_flight = Signal()
        read = Signal()
        m.d.comb += [
            read.eq(reading & (fifo.level + in_flight < self.DEPTH)),
            rd.step.eq(read),
            wr.step.eq(read),
            self.buf.buf.eq(x.buf),
            self.buf.addr.eq(rd.addr),
            self.buf.en.eq(read),
        ]
        dram_addr = Signal(cfg.dram_addr_bits)
        m.d.sync += [in_flight.eq(read), dram_addr.eq(wr.addr)]
        m.d.comb += [
            fifo.w_en.eq(in_flight),
            fifo.w_data.eq(Cat(self.buf.data, dram_addr)),
            self.mem.valid.eq(fifo.r_rdy),
            self.mem.write.eq(1),
            self.mem.wdata.eq(fifo.r_data[:cfg.beat_bits]),
            self.mem.addr.eq(fifo.r_data[cfg.beat_bits:]),
            self.mem.wmask.eq(Const(-1, len(self.mem.wmask))),
            fifo.r_en.eq(self.mem.ready),
        ]
        remaining = Signal(2 * WORD_BITS)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.cmd.ready.eq(1), x.accept.eq(self.cmd.valid)]
                with m.If(self.cmd.valid):
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.busy.eq(1)
                with m.If(code != Err.NONE):
                    m.d.comb += [self.cmd.err.eq(1), self.cmd.err_code.eq(code),
                                 self.cmd.err_addr.eq(addr)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += start.eq(1)
                    m.d.sync += [reading.eq(1), remaining.eq(r["rows"] * r["row_beats"])]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                with m.If(read & rd.last):
                    m.d.sync += reading.eq(0)
                with m.If(self.mem.valid & self.mem.ready):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.d.comb += self.cmd.done.eq(1)
                        m.next = "IDLE"
        return m
