"""Programs larger than the instruction memory: the linker (dypipe.sw.link) cuts the control
program into overlay segments at its boundaries, and the RTL runs them through OVERLAY."""

import dataclasses

import numpy as np
import pytest

from dypipe.config import PRESETS
from dypipe.sw.asm import AsmError, assemble, disassemble_word
from dypipe.sw.functions import LOAD, dma_params
from dypipe.sw.image import DramImage
from dypipe.sw.isa import Buf, Op, Space, decode
from dypipe.sw.link import TRAMPOLINE_WORDS
from dypipe.sw.ops import conv_workload, fc_workload
from dypipe.sw.program import AT, FOOTPRINT_REGS, ProgramBuilder
from dypipe.sw.workload import MODES
from dypipe.tb.runner import run_workload

SMALL = PRESETS["small"]
#: ``small`` with an instruction memory of 512 words: the workloads below need overlays.
TINY = dataclasses.replace(SMALL, name="small-imem512", imem_words=512)
LOAD_NBIN = LOAD[Buf.NBIN]
#: The words of that one module function, and the overlay window it leaves on TINY.
FN_WORDS = len(assemble("\n".join(LOAD_NBIN.asm())).words)
WINDOW_WORDS = TINY.imem_words - 1 - FN_WORDS


def load_task(pb, i):
    """A straight-line task whose immediates change with ``i`` (about 18 words)."""
    pb.task(LOAD_NBIN, **dma_params(dram_addr=1000 + 7 * i, buf_addr=i % 5, row_beats=1 + i % 3),
            reads=[(Space.DRAM, 1000 + 7 * i, 1 + i % 3)], writes=[(Space.NBIN, i % 5, 3)])


def tasks_program(config, n, image=None):
    pb = ProgramBuilder(config)
    for i in range(n):
        load_task(pb, i)
    pb.halt()
    return pb, pb.assemble("<tasks>", image=image)


# -- the linker ------------------------------------------------------------------------------

def test_a_program_that_fits_is_assembled_as_before():
    pb, program = tasks_program(SMALL, 40, DramImage(SMALL))
    plain = assemble(pb.text(), "<tasks>")
    assert (program.words, program.labels, program.lines) == (plain.words, plain.labels,
                                                              plain.lines)
    assert program.overlays == () and program.window is None


def test_boundaries_follow_tasks_outside_atomic_regions():
    pb = ProgramBuilder(SMALL)
    load_task(pb, 0)
    with pb.atomic():
        load_task(pb, 1)
        with pb.atomic():
            pb.boundary()
        load_task(pb, 2)
    pb.boundary()           # the same point as nothing since: one boundary
    pb.boundary()
    load_task(pb, 3)
    lines = [b.line for b in pb._boundaries]
    assert lines == sorted(set(lines)) and len(lines) == 3, lines


def test_overlay_layout_and_trampolines():
    image = DramImage(TINY)
    before = image.used_beats
    pb, program = tasks_program(TINY, 120, image)
    window = program.window
    segments = [program] + [o.program for o in program.overlays]
    assert len(segments) >= 4, [len(s.words) for s in segments]
    # Word 0 jumps over the resident module functions to the window.
    assert program.words[0] == assemble(f"j {window}").words[0]
    assert program.labels[LOAD_NBIN.label] == 1
    assert len(program.words) <= TINY.imem_words and window == 1 + FN_WORDS
    for k, seg in enumerate(segments):
        body = seg.words[window:] if k == 0 else seg.words
        assert len(body) <= TINY.imem_words - window
        if k == len(segments) - 1:
            assert decode(body[-1])["op"] == Op.HALT
            continue
        # The trampoline: li32 r1, <next segment's word address>; li r31, <its length>;
        # overlay r1, r31, window. The next segment's words are its region's data.
        nxt = program.overlays[k]
        tramp = body[-TRAMPOLINE_WORDS:]
        assert tramp == assemble(
            f"li32 r1, {nxt.region.beat * TINY.beat_words}\nli r31, {len(nxt.program.words)}\n"
            f"overlay r1, r31, {window}\n").words
        data = np.asarray(nxt.program.words, dtype="<u4").view("<i2")
        assert np.array_equal(image._data[nxt.region.name], data)
        assert nxt.region.beat >= before, "overlays go after the tensors"
        assert nxt.program.origin == window
    # Every task made it into some segment, and only one halt.
    ops = [decode(w)["op"] for seg in segments for w in
           (seg.words[window:] if seg is program else seg.words)]
    assert ops.count(Op.SAVEPC) == 120 and ops.count(Op.HALT) == 1


def test_a_segment_reloads_the_scratch_registers_the_code_relies_on():
    """Identical tasks: after the first, the builder leaves out every ``li`` (r1 holds 1, r31
    the fourth range's length). The trampoline changes r1 and r31, so a segment starts by
    loading them again."""
    pb = ProgramBuilder(TINY)
    for _ in range(100):
        pb.task(LOAD_NBIN, **dma_params(dram_addr=1, buf_addr=1, row_beats=1),
                reads=[(Space.DRAM, 1, 1), (Space.DRAM, 2, 1), (Space.DRAM, 3, 1)],
                writes=[(Space.NBIN, 1, 1)])
    pb.halt()
    program = pb.assemble("<same>", image=DramImage(TINY))
    assert program.overlays
    restore = assemble(f"li {AT}, 1\nli {FOOTPRINT_REGS[-1]}, 1\n").words
    for overlay in program.overlays:
        assert overlay.program.words[:2] == restore, [
            disassemble_word(w) for w in overlay.program.words[:2]]


def test_an_unsplittable_piece_larger_than_the_window_is_an_error():
    pb = ProgramBuilder(TINY)
    load_task(pb, 0)
    with pb.atomic():
        for i in range(40):
            load_task(pb, i)
    pb.halt()
    with pytest.raises(AsmError) as info:
        pb.assemble("<big>", image=DramImage(TINY))
    message = str(info.value)
    assert message.startswith("<big>:")
    for part in ("has no boundary to split it at", "words of module functions",
                 f"overlay window of {WINDOW_WORDS} words",
                 "pb.atomic()"):
        assert part in message, message


def test_a_branch_across_a_boundary_is_an_error():
    pb = ProgramBuilder(TINY)
    top = pb.label("top")
    for i in range(60):
        load_task(pb, i)
    pb.emit(f"j {top}")
    with pytest.raises(AsmError) as info:
        pb.assemble("<loop>", image=DramImage(TINY))
    assert "label 'top' is in another overlay segment" in str(info.value), str(info.value)
    assert info.value.line == len(pb.lines), "the error names the line of the jump"


def test_overlays_need_the_image():
    pb = ProgramBuilder(TINY)
    for i in range(60):
        load_task(pb, i)
    pb.halt()
    with pytest.raises(AsmError, match="give the DramImage to assemble"):
        pb.assemble("<tasks>")


# -- on the RTL ------------------------------------------------------------------------------

def overlay_beats(config, workload):
    """Beats of instructions the overlays bring in over the memory port (each runs once in
    these programs, which loop only inside a segment)."""
    return sum(-(-len(o.program.words) // config.beat_words) for o in workload.program.overlays)


@pytest.mark.verilator
@pytest.mark.parametrize("make", [
    lambda config, mode: fc_workload(config, n_out=400, n_in=256, mode=mode, seed=4),
    lambda config, mode: conv_workload(config, h=12, w=12, cin=12, cout=20, kernel=3, pad=1,
                                       mode=mode, seed=5),
], ids=["fc", "conv"])
def test_workloads_in_overlays(make):
    """Bit-exact in every mode, at the cycles of the normal build plus at most one memory-port
    cycle per instruction beat the overlays copy (the copy shares the port with the DMA)."""
    normal = {mode: run_workload(make(SMALL, mode)) for mode in MODES}
    tiny = {}
    for mode in MODES:
        workload = make(TINY, mode)
        tiny[mode] = run_workload(workload), workload
    assert len(tiny["static"][1].program.overlays) >= 2
    for mode in MODES:
        r, workload = tiny[mode]
        assert r.verified, f"{mode}: {r.mismatches}"
        bound = normal[mode].cycles + overlay_beats(TINY, workload) + 8 * len(
            workload.program.overlays)
        assert r.cycles <= bound, f"{mode}: {r.cycles} cycles, the normal build took " \
                                  f"{normal[mode].cycles}"
    for runs in (normal, {mode: r for mode, (r, _) in tiny.items()}):
        assert runs["nonepipe"].cycles > max(runs["static"].cycles, runs["dypipe"].cycles)
