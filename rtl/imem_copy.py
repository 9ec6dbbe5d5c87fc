"""The control unit's copy engine: DRAM words into the instruction memory, one word a cycle.

The boot (the program at DRAM word 0), :attr:`~dypipe.sw.isa.Op.OVERLAY` and
:attr:`~dypipe.sw.isa.Op.PREFETCH` use it. It issues beat reads back to back through the
control unit's memory port and writes one 32-bit word per cycle into the instruction memory,
so ``n`` words take about ``n + dram_latency`` cycles instead of a round trip per beat.

Read responses have no back-pressure, so every beat that may arrive must have room: a beat is
requested only while the beats requested and not yet written out (in flight plus queued) are
fewer than the FIFO's depth, :func:`copy_fifo_beats`. The first word may sit anywhere in its
beat; the words before it are skipped.
"""

from amaranth import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..config import WORD_BITS
from .mem_port import ARBITER_LATENCY, MemPort
from .sram import RowWritePort

__all__ = ["ImemCopy", "copy_fifo_beats", "dram_word_bits"]


def copy_fifo_beats(config):
    """Beats the copy engine buffers. A beat holds its place from its request until its last
    word is written: ``ARBITER_LATENCY + dram_latency`` cycles, two through the FIFO,
    ``beat_words`` writing. Streaming one word a cycle needs ``(latency + 2) / beat_words + 1``
    places; one more absorbs a request lost to the arbiter. 9 beats on ``small``, 15 on
    ``paper``."""
    latency = ARBITER_LATENCY + config.dram_latency
    return -(-(latency + 2) // config.beat_words) + 2


def dram_word_bits(config):
    """Width of a DRAM word address (the control unit's LW/SW and OVERLAY address words)."""
    return max(1, (config.dram_bytes // 4 - 1).bit_length())


class ImemCopy(wiring.Component):
    """Members
    -------
    start : In(1)
        Take ``src``, ``count`` and ``dst`` and begin (only while not ``busy``). The caller has
        checked them: ``dst + count <= imem_words`` and the source lies inside the DRAM.
    src : In(dram_word_bits)   DRAM word address of the first word (any word of a beat)
    count : In(range(imem_words + 1))   words to copy; 0 copies nothing
    dst : In(imem address bits)   instruction-memory address of the first word
    busy : Out(1)
        A copy is under way. It falls in the cycle after the last word's write, when an
        instruction fetch reads the new words.
    mem : Out(MemPort)       reads only; no other client of this port may read meanwhile
    imem_w : Out(RowWritePort)
    """

    def __init__(self, config):
        self._config = config
        imem_bits = (config.imem_words - 1).bit_length()
        super().__init__({
            "start": In(1), "src": In(dram_word_bits(config)),
            "count": In(range(config.imem_words + 1)), "dst": In(imem_bits),
            "busy": Out(1),
            "mem": Out(MemPort(config)),
            "imem_w": Out(RowWritePort(imem_bits, WORD_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        bw = cfg.beat_words
        sel_bits = (bw - 1).bit_length()
        depth = copy_fifo_beats(cfg)
        # Block-RAM friendly (registered read); the extra cycle is in copy_fifo_beats.
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=cfg.beat_bits, depth=depth)

        left = Signal.like(self.count)              # words still to write
        waddr = Signal.like(self.dst)               # where the next word goes
        sel = Signal(max(1, sel_bits))              # the next word's place in the head beat
        req_beat = Signal(cfg.dram_addr_bits)       # the next beat to request
        req_words = Signal(len(self.count) + 1)     # words of the beats still to request,
        #                                             counted from the first beat's first word
        held = Signal(range(depth + 1))             # beats requested and not yet written out
        # ``busy`` (``left != 0``) and whether a beat may be requested (words left to request,
        # room for their beat) are flip-flops, set with the counters they follow: the request
        # reaches the arbiter through one gate, not through the counters' comparisons.
        more, room = Signal(), Signal(init=1)

        # -- start: the words, counted from the first one's beat -------------------------------
        # While idle the registers follow the inputs (their enable is ~busy, a register, not the
        # caller's late ``start``); ``left``, which makes the engine busy, takes ``count`` only
        # on ``start``. So ``start`` and ``count`` reach a few flip-flops through one adder.
        first_sel = self.src[:sel_bits] if sel_bits else 0
        with m.If(~self.busy):
            m.d.sync += [left.eq(Mux(self.start, self.count, 0)), waddr.eq(self.dst),
                         sel.eq(first_sel), req_beat.eq(self.src >> sel_bits),
                         req_words.eq(first_sel + self.count),
                         self.busy.eq(self.start & self.count.any()),
                         more.eq(self.count.any() | (first_sel != 0))]    # (their sum's test)

        # -- requests, while there is room for their beats -------------------------------------
        issue, pop = Signal(), Signal()
        m.d.comb += [self.mem.req.valid.eq(self.busy & more & room),
                     self.mem.req.payload.addr.eq(req_beat),
                     issue.eq(self.mem.req.valid & self.mem.req.ready)]
        with m.If(issue):
            m.d.sync += [req_beat.eq(req_beat + 1),
                         req_words.eq(Mux(req_words > bw, req_words - bw, 0)),
                         more.eq(req_words > bw)]
        held_next = held + issue - pop
        m.d.sync += [held.eq(held_next), room.eq(held_next < depth)]
        # Only this engine's reads are answered while it is busy (LW and SW wait for it).
        m.d.comb += [fifo.w_data.eq(self.mem.resp_data),
                     fifo.w_en.eq(self.mem.resp_valid & self.busy)]

        # -- writes: one word a cycle from the head beat ---------------------------------------
        word = fifo.r_data.word_select(sel, WORD_BITS) if sel_bits else fifo.r_data[:WORD_BITS]
        write = Signal()
        m.d.comb += [write.eq(fifo.r_rdy & self.busy),
                     self.imem_w.addr.eq(waddr), self.imem_w.data.eq(word),
                     self.imem_w.en.eq(write)]
        with m.If(write):
            m.d.sync += [waddr.eq(waddr + 1), left.eq(left - 1)]
            with m.If(left == 1):
                m.d.sync += self.busy.eq(0)
            with m.If((sel == bw - 1) | (left == 1)):
                m.d.comb += [fifo.r_en.eq(1), pop.eq(1)]
                m.d.sync += sel.eq(0)
            with m.Else():
                m.d.sync += sel.eq(sel + 1)
        return m
