"""Task records: what SavePC commits and the dispatcher issues to a module sequencer."""

from amaranth import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import WORD_BITS
from ..sw.isa import FIELDS, FOOTPRINT_RANGES, RangeDesc, Space, Buf
from .skid import SkidBuffer

__all__ = ["TaskRecord", "TaskPort", "TaskRegister", "IssueRecord", "IssuePort", "RetirePort",
           "Range", "slot_bits", "space_beats", "PC_BITS", "PENDING"]

#: Released tasks (their code ended, their last macro-instructions still running) a module
#: may have; its sequencer and the dispatcher both keep this many.
PENDING = 2

#: A module function's PC is an imm16 of SavePC.
PC_BITS = FIELDS["imm16"][1]

#: One footprint range as the dispatcher keeps it.
Range = data.StructLayout({"desc": RangeDesc, "len": WORD_BITS})


def slot_bits(config):
    return max(1, (config.cb_slots - 1).bit_length())


def space_beats(config, space):
    """Size in beats of a footprint :class:`Space` (0 for NONE)."""
    from .global_buffer import bank_beats
    space = Space(space)
    if space == Space.DRAM:
        return config.dram_beats
    if space == Space.NONE:
        return 0
    return bank_beats(config, Buf[space.name])


def TaskRecord(config):
    """``unit``: the module (the raw 5-bit field, checked by the dispatcher); ``pc``: the module
    function; ``slot``: the task's context slot; ``barrier``: no footprint was given, the task
    conflicts with every other; ``ranges``: the footprint."""
    return data.StructLayout({
        "unit": FIELDS["a"][1], "pc": PC_BITS, "slot": slot_bits(config), "barrier": 1,
        "ranges": data.ArrayLayout(Range, FOOTPRINT_RANGES),
    })


def TaskPort(config):
    """A stream of task records, from the producer's side (``amaranth.lib.stream``: a record
    moves on ``valid & ready``; ``valid`` does not wait for ``ready``)."""
    return stream.Signature(TaskRecord(config))


class TaskRegister(wiring.Component):
    """A pipeline register on the task stream from the control unit to the dispatcher, so that
    neither unit's logic runs into the other's in one cycle (a record takes a cycle more to
    arrive; the stream still moves one record a cycle). It carries ``pc``, the PC of the
    instruction that committed the record, for the dispatcher's error report.

    It is a :class:`~dypipe.rtl.skid.SkidBuffer`: ``i.ready`` comes from a flip-flop, not from
    the dispatcher's ``ready``, so the dispatcher's decision does not run into the control
    unit's commit in one cycle; it may hold two records.

    Members
    -------
    i : In(TaskPort), i_pc : In(PC_BITS)     from the control unit
    o : Out(TaskPort), o_pc : Out(PC_BITS)   to the dispatcher: the record held, and its PC
    held : Out(range(3))                     records it holds (unfinished tasks on their way)
    """

    def __init__(self, config):
        super().__init__({"i": In(TaskPort(config)), "i_pc": In(PC_BITS),
                          "o": Out(TaskPort(config)), "o_pc": Out(PC_BITS),
                          "held": Out(range(3))})
        self._config = config

    def elaborate(self, platform):
        m = Module()
        m.submodules.skid = skid = SkidBuffer(
            data.StructLayout({"rec": TaskRecord(self._config), "pc": PC_BITS}))
        m.d.comb += [skid.i.valid.eq(self.i.valid), skid.i.payload.rec.eq(self.i.payload),
                     skid.i.payload.pc.eq(self.i_pc), self.i.ready.eq(skid.i.ready),
                     self.o.valid.eq(skid.o.valid), self.o.payload.eq(skid.o.payload.rec),
                     self.o_pc.eq(skid.o.payload.pc), skid.o.ready.eq(self.o.ready),
                     self.held.eq(skid.held)]
        return m


def IssueRecord(config):
    """What a module sequencer takes of an issued task: its function's ``pc`` and its context
    ``slot``. (The whole record would be wires the sequencer never reads, which a synthesis
    that keeps the module hierarchy cannot remove.)"""
    return data.StructLayout({"pc": PC_BITS, "slot": slot_bits(config)})


def IssuePort(config):
    """A stream of issued tasks, from the dispatcher's side."""
    return stream.Signature(IssueRecord(config))


def RetirePort(config):
    """A finished task gives its context slot back."""
    return wiring.Signature({"valid": Out(1), "slot": Out(slot_bits(config))})
