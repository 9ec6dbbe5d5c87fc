"""The global buffer: NBin, SB and NBout banks, with beat-addressed ports for the DMA engines
and row-addressed ports for the PFU.

NBin is two SRAMs, even rows and odd rows, so that the PFU reads two consecutive rows a cycle:
the conv engine takes any C consecutive elements from them (a window may start at any lane).
"""

from amaranth import Module, Signal, Cat, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..sw.isa import Buf
from .sram import SRAM, ReadPort, RowWritePort

__all__ = ["GlobalBuffer", "DmaWritePort", "DmaReadPort", "beat_addr_bits", "bank_beats",
           "INTERLEAVE", "ROW_WRITE"]

#: SRAMs a bank is interleaved over, by row (row ``r`` is row ``r // n`` of SRAM ``r % n``).
INTERLEAVE = {Buf.NBIN: 2, Buf.SB: 1, Buf.NBOUT: 1}
#: Banks with a whole-row write port (the vector unit's into NBin, the MAC array's into
#: NBout); only the load DMA writes SB, and a bank without one is a single memory.
ROW_WRITE = {Buf.NBIN: True, Buf.SB: False, Buf.NBOUT: True}


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
    nbin_r : In(ReadPort)          the PFU: rows ``addr`` (low half) and ``addr + 1`` (high)
    sb_r, nbout_r : In(ReadPort)   the PFU's operand reads
    nbout_w : In(RowWritePort)     the MAC array's write-back (whole rows)
    nbin_w : In(RowWritePort)      the vector unit's write-back (whole rows)
    """

    def __init__(self, config, *, backend="amaranth"):
        self._config = config
        self._banks = {}
        for buf in Buf:
            rows, row_elems = config.buffer_geometry(buf)
            n = INTERLEAVE[buf]
            if rows % n:
                raise ValueError(f"{buf.name} has {rows} rows, not a multiple of {n}")
            self._banks[buf] = [SRAM(width=row_elems * 16, depth=rows // n,
                                     lanes=row_elems // config.beat_elems,
                                     row_write=ROW_WRITE[buf], backend=backend)
                                for _ in range(n)]
        row_bits = {buf: max(1, (config.buffer_geometry(buf)[0] - 1).bit_length())
                    for buf in Buf}
        width = {buf: config.buffer_geometry(buf)[1] * 16 for buf in Buf}
        super().__init__({
            "dma_w": In(DmaWritePort(config)),
            "dma_r": In(DmaReadPort(config)),
            "nbin_r": In(ReadPort(row_bits[Buf.NBIN], 2 * width[Buf.NBIN])),
            "sb_r": In(ReadPort(row_bits[Buf.SB], width[Buf.SB])),
            "nbout_r": In(ReadPort(row_bits[Buf.NBOUT], width[Buf.NBOUT])),
            "nbout_w": In(RowWritePort(row_bits[Buf.NBOUT], width[Buf.NBOUT])),
            "nbin_w": In(RowWritePort(row_bits[Buf.NBIN], width[Buf.NBIN])),
        })

    def elaborate(self, platform):
        m = Module()
        beat_bits = self._config.beat_bits
        for buf, srams in self._banks.items():
            n = len(srams)
            name = buf.name.lower()
            _, row_elems = self._config.buffer_geometry(buf)
            lanes = row_elems // self._config.beat_elems
            lane_bits = (lanes - 1).bit_length()
            w_row, r_row = self.dma_w.addr >> lane_bits, self.dma_r.addr >> lane_bits
            hit = Signal(n, name=f"{name}_rd_hit")
            for i, sram in enumerate(srams):
                m.submodules[f"{name}{i}" if n > 1 else name] = sram
                # Load DMA -> the lane write port.
                m.d.comb += [
                    sram.w_lane.addr.eq(w_row // n),
                    sram.w_lane.lane.eq(self.dma_w.addr[:lane_bits] if lanes > 1 else 0),
                    sram.w_lane.data.eq(self.dma_w.data),
                    sram.w_lane.en.eq(self.dma_w.en & (self.dma_w.buf == buf)
                                      & (w_row % n == i)),
                ]
                # Store DMA -> read port 1, lane chosen a cycle later.
                m.d.comb += [
                    sram.r[1].addr.eq(r_row // n),
                    sram.r[1].en.eq(self.dma_r.en & (self.dma_r.buf == buf) & (r_row % n == i)),
                ]
                m.d.sync += hit[i].eq(sram.r[1].en)
            sel = Signal(max(1, lane_bits), name=f"{name}_rd_lane")
            m.d.sync += sel.eq(self.dma_r.addr[:lane_bits] if lanes > 1 else 0)
            for i, sram in enumerate(srams):
                beat = sram.r[1].data.word_select(sel, beat_bits) if lanes > 1 else sram.r[1].data
                with m.If(hit[i]):
                    m.d.comb += self.dma_r.data.eq(beat)

        (nbin0, nbin1), (sb,), (nbout,) = (self._banks[b] for b in Buf)
        wiring.connect(m, wiring.flipped(self.sb_r), sb.r[0])
        wiring.connect(m, wiring.flipped(self.nbout_r), nbout.r[0])
        wiring.connect(m, wiring.flipped(self.nbout_w), nbout.w_row)
        # NBin: rows a (low half of the data) and a + 1 (high half), from the two SRAMs.
        a = self.nbin_r.addr
        odd = Signal(name="nbin_rd_odd")
        m.d.comb += [nbin0.r[0].addr.eq((a + 1) >> 1), nbin1.r[0].addr.eq(a >> 1),
                     nbin0.r[0].en.eq(self.nbin_r.en), nbin1.r[0].en.eq(self.nbin_r.en)]
        with m.If(self.nbin_r.en):
            m.d.sync += odd.eq(a[0])
        m.d.comb += self.nbin_r.data.eq(Mux(odd, Cat(nbin1.r[0].data, nbin0.r[0].data),
                                            Cat(nbin0.r[0].data, nbin1.r[0].data)))
        for i, sram in enumerate((nbin0, nbin1)):
            m.d.comb += [sram.w_row.addr.eq(self.nbin_w.addr >> 1),
                         sram.w_row.data.eq(self.nbin_w.data),
                         sram.w_row.en.eq(self.nbin_w.en & (self.nbin_w.addr[0] == i))]
        return m
