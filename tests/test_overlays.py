"""Programs larger than the instruction memory: the linker (dypipe.sw.link) cuts the control
program into overlay segments at its boundaries, and the RTL runs them in two windows, each
segment prefetching the next (PREFETCH, ENTER)."""

import dataclasses

import numpy as np
import pytest

from dypipe.config import PRESETS
from dypipe.sw.asm import AsmError, assemble, disassemble_word
from dypipe.sw.functions import LOAD, dma_params
from dypipe.sw.image import DramImage
from dypipe.sw.isa import Buf, Op, Space, decode
from dypipe.sw.link import BOOT_SEGMENTS, PREFETCH_WORDS, TRAMPOLINE_WORDS
from dypipe.sw.ops import conv_workload, fc_workload
from dypipe.sw.program import AT, FOOTPRINT_REGS, ProgramBuilder
from dypipe.sw.workload import MODES
from dypipe.tb.runner import run_workload

SMALL = PRESETS["small"]
#: ``small`` with an instruction memory of 512 words: the workloads below need overlays.
TINY = dataclasses.replace(SMALL, name="small-imem512", imem_words=512, func_words=256)
LOAD_NBIN = LOAD[Buf.NBIN]
#: The words of that one module function, and the two overlay windows it leaves on TINY.
FN_WORDS = len(assemble("\n".join(LOAD_NBIN.asm())).words)
WINDOW_WORDS = (TINY.imem_words - 1 - FN_WORDS) // 2


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

def test_a_program_that_fits_has_its_functions_first():
    pb, program = tasks_program(SMALL, 40, DramImage(SMALL))
    functions = assemble("\n".join(pb._function_lines()) + "\n", origin=1)
    main = 1 + len(functions.words)
    control = assemble("\n".join(pb.lines) + "\n", origin=main, externs=functions.labels)
    assert program.words == (assemble(f"j {main}").words + functions.words + control.words)
    assert program.labels[LOAD_NBIN.label] == 1
    assert program.overlays == () and program.window is None


def test_module_functions_must_fit_func_words():
    # The jump at pc 0 and the one function: 1 + FN_WORDS (12) words.
    fits = 1 << FN_WORDS.bit_length()
    config = dataclasses.replace(SMALL, name="small-func", func_words=fits // 2)
    with pytest.raises(AsmError, match=f"module functions take {FN_WORDS} words.*first "
                                       f"{fits // 2} \\(func_words\\)"):
        tasks_program(config, 2, DramImage(config))
    config = dataclasses.replace(SMALL, name="small-func", func_words=fits)
    tasks_program(config, 2, DramImage(config))


def test_a_label_of_both_the_control_program_and_a_function_is_an_error():
    pb = ProgramBuilder(SMALL)
    load_task(pb, 0)
    pb.label(LOAD_NBIN.label)
    pb.halt()
    with pytest.raises(AsmError, match=f"duplicate label '{LOAD_NBIN.label}' \\(a module "
                                       f"function defines it too\\)"):
        pb.assemble("<tasks>", image=DramImage(SMALL))


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


def booted_segments(program):
    """Segments 0 and 1 as the boot loads them (window 0 is padded with zeros)."""
    w0, w1 = program.windows
    first = program.words[w0:w1]
    while first and first[-1] == 0:
        first.pop()
    return [first, program.words[w1:]]


def test_overlay_layout_prefetches_and_trampolines():
    image = DramImage(TINY)
    before = image.used_beats
    pb, program = tasks_program(TINY, 120, image)
    windows = program.windows
    segments = booted_segments(program) + [o.program.words for o in program.overlays]
    assert len(segments) >= 4, [len(s) for s in segments]
    # Word 0 jumps over the resident module functions to window 0; window 1 follows it, as
    # large. The boot loads segment 0 into window 0 and segment 1 into window 1.
    assert windows == (1 + FN_WORDS, 1 + FN_WORDS + WINDOW_WORDS)
    assert program.window == windows[0]
    assert program.words[0] == assemble(f"j {windows[0]}").words[0]
    assert program.labels[LOAD_NBIN.label] == 1
    assert len(program.words) <= TINY.imem_words
    for k, body in enumerate(segments):
        assert len(body) <= WINDOW_WORDS
        ops = [decode(w)["op"] for w in body]
        if k == len(segments) - 1:
            assert ops[-1] == Op.HALT and Op.PREFETCH not in ops and Op.ENTER not in ops
            continue
        # Segment k runs in window k % 2 and ends by entering the other one.
        other = windows[(k + 1) % 2]
        assert body[-TRAMPOLINE_WORDS:] == assemble(f"enter {other}\n").words
        if k == 0:
            assert Op.PREFETCH not in ops, "segment 1 is booted"
            continue
        # From segment 1 on, a segment starts by prefetching the next one into the other
        # window: li32 r1, <its word address>; li r31, <its length>; prefetch r1, r31, <other>.
        # The next segment's words are its region's data.
        nxt = program.overlays[k + 1 - BOOT_SEGMENTS]
        assert body[:PREFETCH_WORDS] == assemble(
            f"li32 r1, {nxt.region.beat * TINY.beat_words}\nli r31, {len(nxt.program.words)}\n"
            f"prefetch r1, r31, {other}\n").words
        assert ops.count(Op.PREFETCH) == ops.count(Op.ENTER) == 1
        data = np.asarray(nxt.program.words, dtype="<u4").view("<i2")
        assert np.array_equal(image._data[nxt.region.name], data)
        assert nxt.region.beat >= before, "overlays go after the tensors"
        assert nxt.program.origin == other
    # Every task made it into some segment, and only one halt.
    ops = [decode(w)["op"] for body in segments for w in body]
    assert ops.count(Op.SAVEPC) == 120 and ops.count(Op.HALT) == 1


def test_a_segment_reloads_the_scratch_registers_the_code_relies_on():
    """Identical tasks: after the first, the builder leaves out every ``li`` (r1 holds 1, r31
    the fourth range's length). The prefetch that starts a segment changes r1 and r31, so the
    segment loads them again after it. The last segment prefetches nothing, so it has no need
    to."""
    pb = ProgramBuilder(TINY)
    for _ in range(100):
        pb.task(LOAD_NBIN, **dma_params(dram_addr=1, buf_addr=1, row_beats=1),
                reads=[(Space.DRAM, 1, 1), (Space.DRAM, 2, 1), (Space.DRAM, 3, 1)],
                writes=[(Space.NBIN, 1, 1)])
    pb.halt()
    program = pb.assemble("<same>", image=DramImage(TINY))
    assert program.overlays
    restore = assemble(f"li {AT}, 1\nli {FOOTPRINT_REGS[-1]}, 1\n").words
    segments = booted_segments(program)[1:] + [o.program.words for o in program.overlays]
    assert len(segments) >= 3
    for words in segments[:-1]:
        words = words[PREFETCH_WORDS:PREFETCH_WORDS + 2]
        assert words == restore, [disassemble_word(w) for w in words]
    assert decode(segments[-1][0])["op"] == Op.SAVECTX


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

def overlay_cost(config, program):
    """Most cycles the overlays of ``program`` may add to a run: each segment copied at run time
    costs its beats on the memory port it shares with the DMA (when the DMA sets the pace),
    ENTER's wait for the DRAM latency and the copy engine's 3 cycles (when the control unit
    sets the pace: then it runs a segment no faster than the copy streams the next one, a word
    a cycle), and every segment the instructions of its prefetch, restore and trampoline."""
    segments = BOOT_SEGMENTS + len(program.overlays)
    copies = sum(-(-len(o.program.words) // config.beat_words) + 1      # + 1: unaligned
                 + config.dram_latency + 3 for o in program.overlays)
    return copies + (segments - 1) * (PREFETCH_WORDS + 2 + TRAMPOLINE_WORDS)


@pytest.mark.verilator
@pytest.mark.parametrize("make", [
    lambda config, mode: fc_workload(config, n_out=800, n_in=256, mode=mode, seed=4),
    lambda config, mode: conv_workload(config, h=12, w=12, cin=12, cout=20, kernel=3, pad=1,
                                       mode=mode, seed=5),
    lambda config, mode: conv_workload(config, h=26, w=26, cin=4, cout=8, kernel=1, mode=mode,
                                       seed=6),
], ids=["fc", "conv", "conv-short-tasks"])
def test_workloads_in_overlays(make):
    """Bit-exact in every mode, within :func:`overlay_cost` of the cycles of the normal build:
    about 1% for these runs. With blocking copies, the static program of short 1x1 tasks (the
    control unit has little slack) took 27% longer than on the normal build. (At the nominal
    memory timing, which the cost bound assumes.)"""
    normal = {mode: run_workload(make(SMALL, mode), timing=False) for mode in MODES}
    tiny = {}
    for mode in MODES:
        workload = make(TINY, mode)
        tiny[mode] = run_workload(workload, timing=False), workload
    assert tiny["static"][1].program.overlays, "the static program needs run-time copies"
    for mode in MODES:
        r, workload = tiny[mode]
        assert r.verified, f"{mode}: {r.mismatches}"
        cost = overlay_cost(TINY, workload.program)
        assert r.cycles <= normal[mode].cycles + cost, (
            f"{mode}: {r.cycles} cycles, {r.cycles / normal[mode].cycles - 1:.1%} more than the "
            f"{normal[mode].cycles} of the normal build; the overlays may add {cost}")
    for runs in (normal, {mode: r for mode, (r, _) in tiny.items()}):
        assert runs["nonepipe"].cycles > max(runs["static"].cycles, runs["dypipe"].cycles)
