"""The port between a module sequencer and the functional unit that runs its macro-instructions
(the load DMA for IO, the MAC array for PFU, the store DMA for Store)."""

from amaranth import Cat, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import WORD_BITS
from ..sw.isa import Err, FIELDS, Op, FMT_PARAMS, PARAM_BITS

__all__ = ["MacroCmd", "UnitPort", "MAX_PARAMS", "params_too_big", "check_terms", "check_sum",
           "capped_product", "capped_product_of_decrement", "latched", "taken_extents",
           "split_extent", "held_error", "command_fsm"]

#: Registers a macro-instruction reads, at most.
MAX_PARAMS = max(len(p) for p in FMT_PARAMS.values())

#: One macro-instruction as the sequencer hands it over: the opcode, the instruction's ``a``
#: field and ``imm16``, and the parameter registers ``r[b] ..`` (r0 reads zero): as many as the
#: unit's macro-instructions read (:func:`~dypipe.sw.isa.unit_params`), the rest zero.
MacroCmd = data.StructLayout({
    "op": Op,
    "a": FIELDS["a"][1],
    "imm": FIELDS["imm16"][1],
    "params": data.ArrayLayout(WORD_BITS, MAX_PARAMS),
})


def UnitPort():
    """From the sequencer's side: ``macro`` is a stream of macro-instructions (one moves on
    ``macro.valid & macro.ready``); for each, the unit later pulses ``done``, or ``err`` with a
    code and the offending address instead. A unit raises ``err`` only in a cycle where its
    ``macro.ready`` is low, so the sequencer need not withdraw ``valid`` in that cycle.

    A unit's command registers follow ``payload`` in every cycle ``macro.ready`` is high and
    keep the one taken (:func:`latched`): their enables come from the unit's own state, not
    from ``valid``, which arrives late in the cycle."""
    return wiring.Signature({
        "macro": Out(stream.Signature(MacroCmd)),
        "done": In(1), "err": In(1), "err_code": In(Err), "err_addr": In(WORD_BITS),
    })


def params_too_big(params):
    """High when any of the latched parameter registers is not below 2**PARAM_BITS."""
    return Cat(*(p[PARAM_BITS:].any() for p in params)).any()


def check_terms(params):
    """The latched parameters ``params`` (a dict) cut to ``PARAM_BITS``, for the range check's
    sums (:func:`check_sum`): exact wherever the check reads them, since a wider parameter is
    ``BAD_PARAM`` first (:func:`params_too_big`)."""
    return {name: p[:PARAM_BITS] for name, p in params.items()}


def check_sum(m, name, *terms):
    """A range check's last address, the sum of ``terms``, as a signal as wide as the sum
    needs (a balanced adder tree: the carry chains run side by side, not one after another).
    CONV and VEC pass parameters cut to ``PARAM_BITS`` (:func:`check_terms`): a sum of a
    few such terms needs some 25 bits, not the parameter registers' 32 or more."""
    from .pfu import tree_sum       # (rtl.pfu imports this module)
    value = tree_sum(Value.cast(t) for t in terms)
    last = Signal(len(value), name=name)    # not below zero where the check reads it
    m.d.comb += last.eq(value)
    return last


def capped_product(a, b, bits):
    """``a * b`` for a range check against a limit below ``2**bits``: exact while both factors
    are below ``2**bits``; otherwise, unless one of them is zero, ``2**bits`` itself, which is
    already past the limit. So the multiplier is ``bits`` wide, not as wide as the parameter
    registers (an FPGA spends one DSP block on it instead of four), and the check fails on
    exactly the same commands; only the address reported for one whose factor alone exceeds
    the limit is ``2**bits`` and not the product."""
    a, b = Value.cast(a), Value.cast(b)
    over = (((a >> bits) != 0) & (b != 0)) | (((b >> bits) != 0) & (a != 0))
    return Mux(over, 1 << bits, a[:bits] * b[:bits])


def capped_product_of_decrement(a, b, bits):
    """``capped_product(a - 1, b, bits)``, the same value for every ``a`` and ``b``, with the
    cap decided on ``a`` itself (``a - 1`` reaches ``2**bits`` when ``a`` is 0 or above
    ``2**bits``; it is 0 when ``a`` is 1): only the multiplier's ``bits`` take the decrement,
    so no full-width carry chain stands in front of the cap (docs/fpga.md)."""
    a, b = Value.cast(a), Value.cast(b)
    a_over = (a == 0) | (((a >> bits) != 0) & (a != (1 << bits)))
    over = (a_over & (b != 0)) | (((b >> bits) != 0) & (a != 1))
    return Mux(over, 1 << bits, (a[:bits] - 1)[:bits] * b[:bits])


def latched(m, ready, value, name):
    """A register that follows ``value`` (from the incoming command) while ``ready`` and holds
    it otherwise: from the cycle a command is taken it holds that command's ``value``. Its
    enable is ``ready``, the unit's own state: the handshake's ``valid`` reaches no enable.

    ``value`` may be a term of the command's range check (``capped_product`` of two
    parameters, say): the check cycle then starts from the product instead of computing it
    after the parameters' own registers, so the check's multipliers move out of the unit's
    longest path into the cycle that takes the command (docs/fpga.md)."""
    value = Value.cast(value)
    reg = Signal(value.shape(), name=name)
    with m.If(ready):
        m.d.sync += reg.eq(value)
    return reg


def taken_extents(m, ready, new, pairs, prefix=""):
    """The range check's ``(count - 1) * stride`` terms of a command, each a
    :func:`latched` term: for every ``(count, stride, bits)`` of ``pairs``,
    ``capped_product(new[count] - 1, new[stride], bits)`` from the incoming parameters
    ``new`` (:func:`capped_product_of_decrement`), keyed ``"count*stride"``."""
    return {f"{a}*{b}": latched(m, ready, capped_product_of_decrement(new[a], new[b], bits),
                                f"{prefix}{a}_x_{b}")
            for a, b, bits in pairs}


def split_extent(m, ready, count, stride, held_stride, bits, name, zero=0):
    """A range check's ``(count - 1) * stride`` term taken in two halves, for a unit whose take
    cycle is longer than its check cycle (the DMAs): the take cycle registers the product
    ``count * stride`` of the incoming parameters and whether the term is past ``2**bits``
    (both :func:`latched`, no decrement or mux in front of the multiplier); the check cycle's
    expression returned subtracts ``held_stride``, the unit's own register of ``stride``.
    ``zero`` (incoming) makes the term 0; ``held_stride`` must then hold 0 too.

    The term is exact while ``count`` and ``stride`` are below ``2**bits`` and ``count`` is not
    0 (a count of 0 is ``BAD_PARAM`` before any range); otherwise, unless ``count`` is 1 or
    ``stride`` is 0, it is ``2**bits``, past any limit below ``2**bits`` as the true term is
    (``count`` is at least ``2**bits`` or ``stride`` is; :func:`capped_product`'s rule)."""
    count, stride = Value.cast(count), Value.cast(stride)
    keep = ~Value.cast(zero)
    over = (((count >> bits) != 0) & (stride != 0)) | (((stride >> bits) != 0) & (count > 1))
    product = latched(m, ready, Mux(keep, count[:bits] * stride[:bits], 0), f"{name}_product")
    capped = latched(m, ready, keep & over, f"{name}_over")
    return Mux(capped, 1 << bits, product - held_stride[:bits])


def held_error(m, port, err_code, err_addr, name):
    """Registers for a unit's error, and ``(hold, report)``: ``hold()`` in the cycle the check
    finds one registers ``err_code`` and ``err_addr``, ``report()`` in the next puts them on
    ``port``. So the check ends in registers, not in the sequencer's report of it."""
    code = Signal.like(err_code, name=f"{name}_code")
    addr = Signal.like(err_addr, name=f"{name}_addr")

    def hold():
        m.d.sync += [code.eq(err_code), addr.eq(err_addr)]

    def report():
        m.d.comb += [port.err.eq(1), port.err_code.eq(code), port.err_addr.eq(addr)]
    return hold, report


def command_fsm(m, port, busy, err_code, err_addr, run, start, finished):
    """A unit's command cycle: IDLE takes a command from ``port``; CHECK sets ``run`` (a
    signal, sync) and goes to RUN, which lasts until ``finished``, then pulses ``done``, unless
    ``err_code`` is not NONE: then REPORT reports it (with ``err_addr``), a cycle later.
    ``busy`` is high in CHECK, RUN and REPORT.

    The ``start`` statements (sync: the loop's counters and pointers) run in CHECK whatever
    the check finds: they act only through ``run``. So the check's result, the unit's longest
    path, enables one flip-flop and not the loop's few hundred, and the error's registers
    (docs/fpga.md)."""
    from ..sw.isa import Err
    hold, report = held_error(m, port, err_code, err_addr, "held_err")
    with m.FSM():
        with m.State("IDLE"):
            m.d.comb += port.macro.ready.eq(1)
            with m.If(port.macro.valid):
                m.next = "CHECK"
        with m.State("CHECK"):
            m.d.comb += busy.eq(1)
            m.d.sync += start
            with m.If(err_code != Err.NONE):
                hold()
                m.next = "REPORT"
            with m.Else():
                m.d.sync += run.eq(1)
                m.next = "RUN"
        with m.State("REPORT"):
            m.d.comb += busy.eq(1)
            report()
            m.next = "IDLE"
        with m.State("RUN"):
            m.d.comb += busy.eq(1)
            with m.If(finished):
                m.d.comb += port.done.eq(1)
                m.next = "IDLE"
