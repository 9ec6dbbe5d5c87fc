"""The DMA engines: 3-D strided transfers between DRAM and the global buffer (DLOAD3, DSTORE3;
DLOAD and DSTORE are the one-plane case and read six parameter registers).

A transfer moves ``planes`` planes of ``rows`` rows of ``row_beats`` beats; row ``i`` of plane
``p`` starts at DRAM beat ``dram_addr + p * dram_plane_stride + i * dram_stride`` and at bank
beat ``buf_addr + p * buf_plane_stride + i * buf_stride`` (parameters in
:data:`dypipe.sw.isa.DMA_PARAMS` order). Both address ranges are checked before the first beat
moves, so a bad transfer never touches memory.
"""

from amaranth import Module, Signal, Cat, Const, Mux
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..config import WORD_BITS
from ..sw.isa import Buf, Err, Op, DMA_PARAMS
from .global_buffer import DmaReadPort, DmaWritePort, bank_beats
from .mem_port import MemPort
from .unit_port import UnitPort, check_sum, held_error, split_extent

__all__ = ["LoadDMA", "StoreDMA"]


class _Transfer:
    """Latched parameters of one transfer plus its range check (shared by both engines)."""

    def __init__(self, m, config, port):
        self.config = config
        p = port.macro.payload.params
        names = dict(zip(DMA_PARAMS, range(len(DMA_PARAMS))))
        self.buf = Signal(port.macro.payload.a.shape(), name="xfer_buf")
        self.regs = {name: Signal(WORD_BITS, name=f"xfer_{name}") for name in DMA_PARAMS}
        flat = (port.macro.payload.op == Op.DLOAD) | (port.macro.payload.op == Op.DSTORE)
        one_plane = {"planes": 1, "dram_plane_stride": 0, "buf_plane_stride": 0}
        new = {name: Mux(flat, one_plane[name], p[idx]) if name in one_plane else p[idx]
               for name, idx in names.items()}
        # The registers follow the payload while the engine is ready (unit_port.latched).
        ready = port.macro.ready
        with m.If(ready):
            m.d.sync += self.buf.eq(port.macro.payload.a)
            m.d.sync += [self.regs[name].eq(new[name]) for name in DMA_PARAMS]
        dram_bits = config.dram_beats.bit_length()
        buf_bits = max(bank_beats(config, buf) for buf in Buf).bit_length()
        # The range check's extents, from the raw parameters: a one-plane transfer's plane
        # term is zeroed after the multiplier, not by a mux in front of it (split_extent);
        # its plane stride register holds 0 (one_plane).
        self.products = {
            f"{a}*{b}": split_extent(m, ready, p[names[a]], p[names[b]], self.regs[b], bits,
                                     f"xfer_{a}_x_{b}", zero=flat if a == "planes" else 0)
            for a, b, bits in (("planes", "dram_plane_stride", dram_bits),
                               ("rows", "dram_stride", dram_bits),
                               ("planes", "buf_plane_stride", buf_bits),
                               ("rows", "buf_stride", buf_bits))}

    def check(self, m):
        """Combinational ``(code, addr)`` of the first problem with the latched transfer."""
        r, prod = self.regs, self.products
        code = Signal(Err, name="xfer_err_code")
        addr = Signal(WORD_BITS, name="xfer_err_addr")
        last_dram = check_sum(m, "xfer_last_dram", r["dram_addr"], prod["planes*dram_plane_stride"],
                              prod["rows*dram_stride"], r["row_beats"] - 1)
        last_buf = check_sum(m, "xfer_last_buf", r["buf_addr"], prod["planes*buf_plane_stride"],
                             prod["rows*buf_stride"], r["row_beats"] - 1)
        limit = Signal(WORD_BITS, name="xfer_buf_beats")
        with m.Switch(self.buf):
            for buf in Buf:
                with m.Case(buf):
                    m.d.comb += limit.eq(bank_beats(self.config, buf))
        with m.If((r["rows"] == 0) | (r["row_beats"] == 0) | (r["planes"] == 0)
                  | (self.buf >= len(Buf))):
            m.d.comb += code.eq(Err.BAD_PARAM)
        with m.Elif(last_dram >= self.config.dram_beats):
            m.d.comb += [code.eq(Err.DRAM_RANGE), addr.eq(last_dram)]
        with m.Elif(last_buf >= limit):
            m.d.comb += [code.eq(Err.BUF_RANGE), addr.eq(last_buf)]
        return code, addr


    def command(self, m, port, busy, can_start=1):
        """Take a command from ``port`` while not ``busy``, check it (an error goes back on
        ``port``), and return ``(checking, go)``: ``checking`` is high while the latched
        command is checked (the engine is idle then, so its walkers may load the command's
        start whatever the check finds: the check's carry chains then reach one flip-flop,
        ``go``'s, not every walker register's enable), and ``go`` pulses when the command
        passed and ``can_start``."""
        go = Signal(name="xfer_go")
        checking = Signal(name="xfer_checking")
        code, addr = self.check(m)
        hold, report = held_error(m, port, code, addr, "xfer_held_err")
        with m.FSM(name="command"):
            with m.State("IDLE"):
                m.d.comb += port.macro.ready.eq(~busy)
                with m.If(port.macro.valid & ~busy):
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += checking.eq(1)
                with m.If(code != Err.NONE):
                    hold()
                    m.next = "REPORT"
                with m.Elif(can_start):
                    m.d.comb += go.eq(1)
                    m.next = "IDLE"
            with m.State("REPORT"):
                report()
                m.next = "IDLE"
        return checking, go


class _Walker:
    """Steps through the beats of a 3-D transfer: ``addr`` is the current beat, ``step``
    advances it, ``last`` is high on the final beat. ``geometry`` is ``(base, stride, rows,
    row_beats, plane_stride, planes)``."""

    def __init__(self, m, name, geometry, start):
        base, stride, rows, row_beats, plane_stride, planes = geometry
        self.addr = Signal(WORD_BITS, name=f"{name}_addr")
        plane_base = Signal(WORD_BITS, name=f"{name}_plane_base")
        row_base = Signal(WORD_BITS, name=f"{name}_row_base")
        beat = Signal(WORD_BITS, name=f"{name}_beat")
        row = Signal(WORD_BITS, name=f"{name}_row")
        plane = Signal(WORD_BITS, name=f"{name}_plane")
        self.step = Signal(name=f"{name}_step")
        self.last = Signal(name=f"{name}_last")
        end_of_row = beat == row_beats - 1
        end_of_plane = end_of_row & (row == rows - 1)
        m.d.comb += [self.addr.eq(row_base + beat),
                     self.last.eq(end_of_plane & (plane == planes - 1))]
        with m.If(start):
            m.d.sync += [plane_base.eq(base), row_base.eq(base), beat.eq(0), row.eq(0),
                         plane.eq(0)]
        with m.Elif(self.step):
            with m.If(end_of_plane):
                m.d.sync += [beat.eq(0), row.eq(0), plane.eq(plane + 1),
                             plane_base.eq(plane_base + plane_stride),
                             row_base.eq(plane_base + plane_stride)]
            with m.Elif(end_of_row):
                m.d.sync += [beat.eq(0), row.eq(row + 1), row_base.eq(row_base + stride)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)


def _geometry(regs, side):
    """The walker geometry of one side (``"dram"`` or ``"buf"``) of latched parameters."""
    return (regs[f"{side}_addr"], regs[f"{side}_stride"], regs["rows"], regs["row_beats"],
            regs[f"{side}_plane_stride"], regs["planes"])


class LoadDMA(wiring.Component):
    """DRAM -> global buffer (:attr:`Op.DLOAD`).

    The engine takes the next command as soon as the last request of the current one is out;
    the receive side finishes earlier commands in order (their descriptors wait in a small
    queue), so back-to-back loads keep the memory port busy across DRAM latency. ``done``
    pulses once per command, when its last beat is in the bank.

    Members
    -------
    cmd : In(UnitPort)
    mem : Out(MemPort)
    buf : Out(DmaWritePort)
    busy : Out(1)
    """

    QUEUE = 2

    def __init__(self, config):
        self._config = config
        super().__init__({"cmd": In(UnitPort()), "mem": Out(MemPort(config)),
                          "buf": Out(DmaWritePort(config)), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        x = _Transfer(m, self._config, self.cmd)
        r = x.regs
        start = Signal()
        issue = _Walker(m, "issue", _geometry(r, "dram"), start)
        issuing = Signal()

        # Receive descriptors, in command order.
        fields = ("buf_addr", "buf_stride", "rows", "row_beats", "buf_plane_stride", "planes")
        m.submodules.queue = queue = SyncFIFO(width=len(x.buf) + WORD_BITS * len(fields),
                                              depth=self.QUEUE)
        m.d.comb += queue.w_data.eq(Cat(x.buf, *(r[name] for name in fields)))
        head = {name: queue.r_data[len(x.buf) + i * WORD_BITS:len(x.buf) + (i + 1) * WORD_BITS]
                for i, name in enumerate(fields)}
        cur = {name: Signal(WORD_BITS, name=f"recv_{name}") for name in fields}
        cur_buf = Signal.like(x.buf)
        receiving = Signal()
        take = Signal()
        recv = _Walker(m, "recv", (head["buf_addr"], cur["buf_stride"], cur["rows"],
                                   cur["row_beats"], cur["buf_plane_stride"], cur["planes"]),
                       take)
        finished = Signal()
        m.d.comb += [
            finished.eq(self.mem.resp_valid & recv.last),
            take.eq(queue.r_rdy & (~receiving | finished)),
            queue.r_en.eq(take),
            self.cmd.done.eq(finished),
        ]
        with m.If(take):
            m.d.sync += [cur_buf.eq(queue.r_data[:len(x.buf)]), receiving.eq(1)]
            m.d.sync += [cur[name].eq(head[name]) for name in fields]
        with m.Elif(finished):
            m.d.sync += receiving.eq(0)

        m.d.comb += [
            self.mem.req.payload.write.eq(0),
            self.mem.req.payload.addr.eq(issue.addr),
            self.mem.req.valid.eq(issuing),
            issue.step.eq(self.mem.req.valid & self.mem.req.ready),
            recv.step.eq(self.mem.resp_valid),
            self.buf.buf.eq(cur_buf),
            self.buf.addr.eq(recv.addr),
            self.buf.data.eq(self.mem.resp_data),
            self.buf.en.eq(self.mem.resp_valid),
            self.busy.eq(issuing | receiving | queue.r_rdy),
        ]
        with m.If(issue.step & issue.last):
            m.d.sync += issuing.eq(0)
        checking, go = x.command(m, self.cmd, busy=issuing, can_start=queue.w_rdy)
        m.d.comb += start.eq(checking)
        with m.If(go):
            m.d.comb += queue.w_en.eq(1)
            m.d.sync += issuing.eq(1)
        return m


class StoreDMA(wiring.Component):
    """Global buffer -> DRAM (:attr:`Op.DSTORE`).

    Bank reads run up to :attr:`DEPTH` beats ahead of the memory port; the engine takes the
    next command as soon as the current one's last beat has been read, and ``done`` pulses
    when a command's last beat has gone to DRAM.

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
        rd = _Walker(m, "rd", _geometry(r, "buf"), start)
        wr = _Walker(m, "wr", _geometry(r, "dram"), start)

        # Beats read from the bank wait here, with their DRAM address and whether they end a
        # command, for the memory port.
        m.submodules.fifo = fifo = SyncFIFO(width=cfg.beat_bits + cfg.dram_addr_bits + 1,
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
        ends = Signal()
        m.d.sync += [in_flight.eq(read), dram_addr.eq(wr.addr), ends.eq(read & rd.last)]
        with m.If(read & rd.last):
            m.d.sync += reading.eq(0)
        head_ends = fifo.r_data[-1]
        req = self.mem.req.payload
        m.d.comb += [
            fifo.w_en.eq(in_flight),
            fifo.w_data.eq(Cat(self.buf.data, dram_addr, ends)),
            self.mem.req.valid.eq(fifo.r_rdy),
            req.write.eq(1),
            req.wdata.eq(fifo.r_data[:cfg.beat_bits]),
            req.addr.eq(fifo.r_data[cfg.beat_bits:cfg.beat_bits + cfg.dram_addr_bits]),
            req.wmask.eq(Const(-1, len(req.wmask))),
            fifo.r_en.eq(self.mem.req.ready),
            self.cmd.done.eq(self.mem.req.valid & self.mem.req.ready & head_ends),
            self.busy.eq(reading | in_flight | fifo.r_rdy),
        ]
        checking, go = x.command(m, self.cmd, busy=reading)
        m.d.comb += start.eq(checking)
        with m.If(go):
            m.d.sync += reading.eq(1)
        return m
