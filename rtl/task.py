"""Task records: what SavePC commits and the dispatcher issues to a module sequencer."""

from amaranth import Module, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import WORD_BITS
from ..sw.isa import FIELDS, FOOTPRINT_RANGES, RangeDesc, Space, Buf
from .skid import SkidBuffer

__all__ = ["TaskRecord", "TaskPort", "TaskRegister", "IssueRecord", "IssuePort", "RetirePort",
           "Range", "Extent", "TaskEntry", "extent_of", "prepare_task", "extent_bits", "slot_bits",
           "space_beats", "PC_BITS", "PENDING"]

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


def extent_bits(config):
    """Width of a beat address or end in an :func:`Extent`: a well-formed range ends within
    its space, so the largest space bounds both."""
    return max(space_beats(config, sp) for sp in Space).bit_length()


def Extent(config):
    """A footprint range as the dispatcher compares it: ``space`` (NONE for an empty range),
    ``write``, and the beats ``lo .. hi - 1``."""
    n = extent_bits(config)
    return data.StructLayout({"space": Space, "write": 1, "lo": n, "hi": n})


def extent_of(rng, ext):
    """Statements setting the :func:`Extent` ``ext`` from the range ``rng`` of a record."""
    return [ext.space.eq(Mux(rng.len == 0, Space.NONE, rng.desc.space)),
            ext.write.eq(rng.desc.write), ext.lo.eq(rng.desc.lo),
            ext.hi.eq(rng.desc.lo + rng.len)]


def TaskEntry(config):
    """A task record as the dispatcher's ring takes it (:func:`prepare_task`): the record
    ``rec``, its ranges as :func:`Extent` views ``ext``, and for each range whether its end
    is too ``long`` for an extent's ``hi`` (so past the end of any space)."""
    return data.StructLayout({
        "rec": TaskRecord(config), "ext": data.ArrayLayout(Extent(config), FOOTPRINT_RANGES),
        "long": FOOTPRINT_RANGES})


def prepare_task(m, rec, entry):
    """Statements (comb, in ``m``) setting the :func:`TaskEntry` ``entry`` from the record
    ``rec``: an adder and a zero test per range, and no comparison."""
    m.d.comb += entry.rec.eq(rec)
    for i in range(FOOTPRINT_RANGES):
        rng, ext = rec.ranges[i], entry.ext[i]
        end = rng.desc.lo + rng.len
        m.d.comb += [*extent_of(rng, ext), entry.long[i].eq(end[len(ext.hi):] != 0)]


def TaskPort(config):
    """A stream of task records, from the producer's side (``amaranth.lib.stream``: a record
    moves on ``valid & ready``; ``valid`` does not wait for ``ready``)."""
    return stream.Signature(TaskRecord(config))


class TaskRegister(wiring.Component):
    """A pipeline register on the task stream from the control unit to the dispatcher, so that
    neither unit's logic runs into the other's in one cycle (a record takes a cycle more to
    arrive; the stream still moves one record a cycle). It carries ``pc``, the PC of the
    instruction that committed the record, for the dispatcher's error report.

    It hands the dispatcher each record prepared (:func:`prepare_task`: its ranges' ends,
    computed in front of its flip-flops), so that the dispatcher's comparisons start from
    registers, not from an adder and a 32-bit zero test.

    It is a :class:`~dypipe.rtl.skid.SkidBuffer`: ``i.ready`` comes from a flip-flop, not from
    the dispatcher's ``ready``, so the dispatcher's decision does not run into the control
    unit's commit in one cycle; it may hold two records.

    Members
    -------
    i : In(TaskPort), i_pc : In(PC_BITS)     from the control unit
    o : Out(stream.Signature(TaskEntry)), o_pc : Out(PC_BITS)
                                             to the dispatcher: the record held, prepared,
                                             and its PC
    held : Out(range(3))                     records it holds (unfinished tasks on their way)
    """

    def __init__(self, config):
        super().__init__({"i": In(TaskPort(config)), "i_pc": In(PC_BITS),
                          "o": Out(stream.Signature(TaskEntry(config))), "o_pc": Out(PC_BITS),
                          "held": Out(range(3))})
        self._config = config

    def elaborate(self, platform):
        m = Module()
        m.submodules.skid = skid = SkidBuffer(
            data.StructLayout({"entry": TaskEntry(self._config), "pc": PC_BITS}))
        prepare_task(m, self.i.payload, skid.i.payload.entry)
        m.d.comb += [skid.i.valid.eq(self.i.valid),
                     skid.i.payload.pc.eq(self.i_pc), self.i.ready.eq(skid.i.ready),
                     self.o.valid.eq(skid.o.valid), self.o.payload.eq(skid.o.payload.entry),
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
