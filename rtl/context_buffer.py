"""The context buffer (CB): ``cb_slots`` context slots of ``ctx_slot_words`` words.

A row holds :data:`CB_LANES` consecutive words, so that the control unit writes up to that many
a cycle: SAVECTX one, the spawn engine a template's context :data:`CB_LANES` words at a time.
Each module sequencer reads one word a cycle through its own port (LDC).

A write lands a cycle after it is offered: a register in front of the memory's write port, so
that the control unit's decisions (which row, which words, the spawn engine's sums) end at
flip-flops it can be placed beside, not at the block RAM's inputs (docs/fpga.md).
"""

from amaranth import Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import WORD_BITS, CB_LANES
from .sram import ReadPort

__all__ = ["ContextBuffer", "CbWritePort"]


def CbWritePort(config):
    """Writes the words of row ``row`` whose bit is set in ``mask`` (from the writer's side);
    word ``i`` of the row is word ``row * CB_LANES + i`` of the CB."""
    return wiring.Signature({
        "row": Out(range(config.cb_words // CB_LANES)), "mask": Out(CB_LANES),
        "data": Out(CB_LANES * WORD_BITS),
    })


class ContextBuffer(wiring.Component):
    """Members
    -------
    w : In(CbWritePort)      written into the memory a cycle later
    r : In(ReadPort(word address, 32)).array(n_readers)   ``data`` the cycle after ``en``
    """

    def __init__(self, config, n_readers):
        self._config = config
        super().__init__({
            "w": In(CbWritePort(config)),
            "r": In(ReadPort((config.cb_words - 1).bit_length(), WORD_BITS)).array(n_readers),
        })

    def elaborate(self, platform):
        m = Module()
        lane_bits = (CB_LANES - 1).bit_length()
        m.submodules.mem = mem = Memory(shape=unsigned(CB_LANES * WORD_BITS),
                                        depth=self._config.cb_words // CB_LANES, init=[],
                                        attrs={"no_rw_check": 1})
        w = mem.write_port(granularity=WORD_BITS)
        m.d.sync += [w.addr.eq(self.w.row), w.data.eq(self.w.data), w.en.eq(self.w.mask)]
        for i, port in enumerate(self.r):
            r = mem.read_port()
            lane = Signal(lane_bits, name=f"lane{i}")
            m.d.comb += [r.addr.eq(port.addr >> lane_bits), r.en.eq(port.en),
                         port.data.eq(r.data.word_select(lane, WORD_BITS))]
            with m.If(port.en):
                m.d.sync += lane.eq(port.addr[:lane_bits])
        return m
