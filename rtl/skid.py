"""A pipeline register on a stream that cuts both directions: the skid buffer.

A plain register on ``valid`` and ``payload`` still leaves ``ready`` running back through it in
the same cycle. The skid buffer's ``i.ready`` comes from a flip-flop instead (its spare place
is empty), so neither side's logic runs into the other's in one cycle. A record offered while
the output stalls waits in the spare place and leaves first when the output moves: it holds
at most two records, passes one a cycle when the output always moves, and takes one cycle
more than a wire to cross.
"""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))   ``valid`` and ``payload`` are flip-flops
    held : Out(range(3))               records inside (taken and not yet passed on)
    """

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "held": Out(range(3))})

    def elaborate(self, platform):
        m = Module()
        spare = Signal.like(self.i.payload, name="spare")
        spare_valid = Signal()
        m.d.comb += [self.i.ready.eq(~spare_valid),
                     self.held.eq(self.o.valid + spare_valid)]
        with m.If(~self.o.valid | self.o.ready):
            with m.If(spare_valid):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(spare), spare_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        with m.Elif(~spare_valid):
            # (enabled by the buffer's own state: the input's late valid is data)
            m.d.sync += [spare.eq(self.i.payload), spare_valid.eq(self.i.valid)]
        return m
