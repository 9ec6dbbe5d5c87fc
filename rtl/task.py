"""Task records: what SavePC commits and the dispatcher issues to a module sequencer."""

from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..sw.isa import FIELDS

__all__ = ["TaskRecord", "TaskPort", "RetirePort", "slot_bits", "PC_BITS"]

#: A module function's PC is an imm16 of SavePC.
PC_BITS = FIELDS["imm16"][1]


def slot_bits(config):
    return max(1, (config.cb_slots - 1).bit_length())


def TaskRecord(config):
    """``unit``: the module (a raw 5-bit field, checked by the dispatcher), ``pc``: the module
    function, ``slot``: the task's context slot."""
    return data.StructLayout({"unit": FIELDS["a"][1], "pc": PC_BITS, "slot": slot_bits(config)})


def TaskPort(config):
    """A stream of task records, from the producer's side."""
    return wiring.Signature({"valid": Out(1), "ready": In(1), "payload": Out(TaskRecord(config))})


def RetirePort(config):
    """A finished task gives its context slot back."""
    return wiring.Signature({"valid": Out(1), "slot": Out(slot_bits(config))})
