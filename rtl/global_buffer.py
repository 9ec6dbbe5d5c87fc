"""The global buffer: NBin, SB and NBout banks, with beat-addressed ports for the DMA engines
and row-addressed ports for the PFU."""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..sw.isa import Buf
from .sram import SRAM, ReadPort, RowWritePort

__all__ = ["GlobalBuffer", "DmaWritePort", "DmaReadPort", "beat_addr_bits", "bank_beats"]


def bank_beats(config, buf):
    """Number of DRAM beats bank ``buf`` holds."""
    rows, row_elems = config.buffer_geometry(buf)
    return rows * row_elems // config.beat_elems


def beat_addr_bits(config):
    """Width of a beat address into any bank."""
    return max(bank_beats(config, buf) for buf in Buf).bit_length()


def DmaWritePort(config):
    """The load DMA's port: write one beat at beat address ``addr`` of bank ``buf``."""
    return wiring.Signature({"buf": Out(Buf), "addr": Out(beat_addr_bits(config)),
                             "data": Out(config.beat_bits), "en": Out(1)})


def DmaReadPort(config):
    """The store DMA's port: ``data`` is the beat at (``buf``, ``addr``) the cycle after ``en``."""
    return wiring.Signature({"buf": Out(Buf), "addr": Out(beat_addr_bits(config)),
                             "en": Out(1), "data": In(config.beat_bits)})


class GlobalBuffer(wiring.Component):
    """NBin (``pe_cols`` elements a row), SB (``pe_rows x pe_cols``) and NBout (``pe_rows``).

    A bank row is a whole number of DRAM beats; beat address ``a`` of a bank is beat
    ``a % beats_per_row`` of row ``a // beats_per_row``.

    Members
    -------
    dma_w : In(DmaWritePort)       the load DMA
    dma_r : In(DmaReadPort)        the store DMA
    nbin_r, sb_r, nbout_r : In(ReadPort)   the PFU's operand reads
    nbout_w : In(RowWritePort)     the MAC array's write-back (whole rows)
    nbin_w : In(RowWritePort)      the vector unit's write-back (whole rows)
    """

    def __init__(self, config, *, backend="amaranth"):
        self._config = config
        self._banks = {}
        for buf in Buf:
            rows, row_elems = config.buffer_geometry(buf)
            self._banks[buf] = SRAM(width=row_elems * 16, depth=rows,
                                    lanes=row_elems // config.beat_elems, backend=backend)
        nbin, sb, nbout = (self._banks[b] for b in Buf)
        super().__init__({
            "dma_w": In(DmaWritePort(config)),
            "dma_r": In(DmaReadPort(config)),
            "nbin_r": In(ReadPort(nbin.addr_bits, nbin.r[0].data.shape().width)),
            "sb_r": In(ReadPort(sb.addr_bits, sb.r[0].data.shape().width)),
            "nbout_r": In(ReadPort(nbout.addr_bits, nbout.r[0].data.shape().width)),
            "nbout_w": In(RowWritePort(nbout.addr_bits, nbout.w_row.data.shape().width)),
            "nbin_w": In(RowWritePort(nbin.addr_bits, nbin.w_row.data.shape().width)),
        })

    def elaborate(self, platform):
        m = Module()
        beat_bits = self._config.beat_bits
        for buf, bank in self._banks.items():
            m.submodules[buf.name.lower()] = bank
            _, row_elems = self._config.buffer_geometry(buf)
            lanes = row_elems // self._config.beat_elems
            lane_bits = (lanes - 1).bit_length()
            # Load DMA -> the lane write port.
            m.d.comb += [
                bank.w_lane.addr.eq(self.dma_w.addr >> lane_bits),
                bank.w_lane.lane.eq(self.dma_w.addr[:lane_bits] if lanes > 1 else 0),
                bank.w_lane.data.eq(self.dma_w.data),
                bank.w_lane.en.eq(self.dma_w.en & (self.dma_w.buf == buf)),
            ]
            # Store DMA -> read port 1, lane chosen a cycle later.
            hit = Signal(name=f"{buf.name.lower()}_rd_hit")
            m.d.comb += [
                bank.r[1].addr.eq(self.dma_r.addr >> lane_bits),
                bank.r[1].en.eq(self.dma_r.en & (self.dma_r.buf == buf)),
            ]
            m.d.sync += hit.eq(bank.r[1].en)
            if lanes > 1:
                sel = Signal(lane_bits, name=f"{buf.name.lower()}_rd_lane")
                m.d.sync += sel.eq(self.dma_r.addr[:lane_bits])
                beat = bank.r[1].data.word_select(sel, beat_bits)
            else:
                beat = bank.r[1].data
            with m.If(hit):
                m.d.comb += self.dma_r.data.eq(beat)

        nbin, sb, nbout = (self._banks[b] for b in Buf)
        wiring.connect(m, wiring.flipped(self.nbin_r), nbin.r[0])
        wiring.connect(m, wiring.flipped(self.sb_r), sb.r[0])
        wiring.connect(m, wiring.flipped(self.nbout_r), nbout.r[0])
        wiring.connect(m, wiring.flipped(self.nbout_w), nbout.w_row)
        wiring.connect(m, wiring.flipped(self.nbin_w), nbin.w_row)
        return m
