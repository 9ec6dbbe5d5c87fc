"""The run-time loop of the workloads that keep several sequences in flight, one per *slot*
(``seqloop``, ``seq2seq``): rounds over the slots until a round finds none busy.

The first ``slots`` rounds are unrolled: round ``r`` first lets slot ``r`` join (define its
templates and give it its first sequence), then steps slots ``0 .. r``, so that the first
tasks start at once and later slots are set up while earlier ones run. Then a loop of
rounds over every slot runs while the last round stepped any."""

from .program import FOOTPRINT_REGS

__all__ = ["slot_rounds", "FIRST_SLOT_REG", "SLOT_REGS"]

#: The slots' registers start here (r2 .. r6 are the loops' own) and end below the footprint
#: registers that template definitions fill.
FIRST_SLOT_REG = 7
SLOT_REGS = FOOTPRINT_REGS[0].index - FIRST_SLOT_REG


def slot_rounds(pb, slots, busy, join, step):
    """Emit the rounds. ``join(r)`` sets slot ``r`` up; ``step(ks)`` emits one step of each
    slot in ``ks`` that has a sequence, setting register ``busy`` to 1 when one does."""
    for r in range(slots):
        pb.li(busy, 0)
        join(r)
        step(range(r + 1))
    done = pb.fresh_label("done")
    pb.emit(f"beq {busy}, r0, {done}")
    loop = pb.label(pb.fresh_label("round"))
    pb.li(busy, 0)
    step(range(slots))
    pb.emit(f"bne {busy}, r0, {loop}")
    pb.label(done)
