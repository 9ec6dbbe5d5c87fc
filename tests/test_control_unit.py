"""The control unit's fetch and its two-cycle MUL and shifts, in Amaranth's simulator with the
Python DRAM model (the harness of ``test_imem_copy``): a PC outside the instruction memory is
``PC_RANGE`` with the PC it went to, however it got there, and MUL's product is exact."""

import dataclasses
import random

import numpy as np

import pytest

from dypipe.sw.isa import Err, Op, encode, decode

from test_imem_copy import SMALL, run, program, dram_word

#: A small instruction memory, so that running off its end is quick.
SHORT = dataclasses.replace(SMALL, name="short-imem", imem_words=2048, func_words=1024)


def test_running_off_the_end():
    """The last word executes; the step past it is PC_RANGE at imem_words, found in the fill
    cycle after it (and shown on ``err`` from the next)."""
    end = SHORT.imem_words
    words = {0: encode(Op.JAL, a=0, imm21=end - 3)}
    words.update({pc: encode(Op.NOP) for pc in range(end - 3, end)})
    seen, _ = run(SHORT, words, end, limit=3 * end)
    assert seen["error"] == (Err.PC_RANGE, end, end), seen["error"]
    *_, last, fill = seen["trace"]
    assert last.pc == end - 1 and not last.stalled
    assert fill.pc == end and fill.stalled


@pytest.mark.parametrize("text, target", [
    ("jal r1, 5000", 5000),                     # forward, past the end
    ("li r2, 3\njalr r1, r2, -10", -7),         # below zero
    ("li r2, 4\nli r3, 4\nbeq r2, r3, 3000", 3000),
])
def test_a_jump_outside_the_memory(text, target):
    seen, _ = run(SHORT, dict(enumerate(program(text + "\nhalt\n"))), len(program(text)) + 1)
    assert seen["error"] == (Err.PC_RANGE, target & 0xFFFF, target & 0xFFFF_FFFF), seen["error"]


def test_mul_is_exact_and_takes_two_cycles():
    rng = random.Random(5)
    pairs = [(0x1234_5678, 0x9ABC_DEF0), (-1, -1), (-70_000, 3), (0xFFFF, 0x1_0001)]
    pairs += [(rng.getrandbits(32), rng.getrandbits(32)) for _ in range(6)]
    out = 100 * SMALL.beat_words
    lines = [f"li32 r9, {out}"]
    for k, (a, b) in enumerate(pairs):
        lines += [f"li32 r2, {a}", f"li32 r3, {b}", "mul r4, r2, r3", f"sw r4, {k}(r9)"]
    words = program("\n".join(lines) + "\nhalt\n")
    seen, mem = run(SMALL, dict(enumerate(words)), len(words), limit=2000)
    assert seen["halted"] and seen["error"] is None, seen
    for k, (a, b) in enumerate(pairs):
        assert dram_word(SMALL, mem, out + k) == (a * b) & 0xFFFF_FFFF, (k, a, b)
    muls = [pc for pc, w in enumerate(words) if decode(w)["op"] == Op.MUL]
    for pc in muls:
        assert [c.stalled for c in seen["trace"] if c.pc == pc] == [1, 0], pc


@pytest.mark.parametrize("op", ["sll", "srl", "sra", "slli", "srli", "srai"])
def test_shifts_are_exact_and_take_two_cycles(op):
    """A shift, by a register or by an immediate (the shifters behind a register read were the
    longest paths into the register file), registers its result in a first cycle and writes
    it in the next."""
    rng = random.Random(op)
    pairs = [(0x8000_0001, 31), (-5, 1), (0x1234_5678, 0), (1, 37)]      # 37: the low 5 bits
    pairs += [(rng.getrandbits(32), rng.getrandbits(32)) for _ in range(6)]
    out = 100 * SMALL.beat_words
    lines = [f"li32 r9, {out}"]
    for k, (a, b) in enumerate(pairs):
        shift = f"{op} r4, r2, {b & 31}" if op.endswith("i") else f"{op} r4, r2, r3"
        lines += [f"li32 r2, {a}", f"li32 r3, {b}", shift, f"sw r4, {k}(r9)"]
    words = program("\n".join(lines) + "\nhalt\n")
    seen, mem = run(SMALL, dict(enumerate(words)), len(words), limit=2000)
    assert seen["halted"] and seen["error"] is None, seen
    for k, (a, b) in enumerate(pairs):
        a, n = a & 0xFFFF_FFFF, b & 31
        want = {"sll": a << n, "srl": a >> n,
                "sra": (a - (1 << 32) if a >> 31 else a) >> n}[op.rstrip("i")] & 0xFFFF_FFFF
        assert dram_word(SMALL, mem, out + k) == want, (k, a, b)
    shifts = [pc for pc, w in enumerate(words) if decode(w)["op"] == Op[op.upper()]]
    assert len(shifts) == len(pairs)
    for pc in shifts:
        assert [c.stalled for c in seen["trace"] if c.pc == pc] == [1, 0], pc


def _load_then_store(control, load_addr, image, dst, data):
    """Run ``control`` (the control program up to HALT) whose tasks are ``fio``, which loads
    the DRAM beat at the address ``load_addr`` leaves in r2 into NBin, and ``fst``, which
    stores NBin's first beat to ``dst``; the run must give ``dst`` = ``data``."""
    from dypipe.tb.runner import run_workload
    from conftest import asm_workload
    setup = "\n".join(f"    li r{r}, {v}" for r, v in ((3, 0), (4, 1), (5, 1), (6, 0), (7, 0)))
    text = f"""
    {control}
        halt
    fio:
    {load_addr}
    {setup}
        dload nbin, r2
        end
    fst:
        li32 r2, {dst.beat}
    {setup}
        dstore nbin, r2
        end
    """
    result = run_workload(asm_workload(text, image=image, expected={"dst": data}))
    assert result.verified, result
    return result


@pytest.mark.verilator
def test_a_sequencer_mul_is_exact():
    """A module function's MUL (two cycles in the sequencers too) gives the DRAM beat that an
    IO task loads from: -3 * -109,231, with both operands' high halves set. A store task
    writes the beat back, and it must be the one placed there."""
    from dypipe.sw.image import DramImage
    image = DramImage(SMALL)
    beat = 3 * 109_231
    image.alloc("pad", (beat - image.program_beats) * SMALL.beat_elems)
    data = np.arange(SMALL.beat_elems, dtype=np.int16) * 7 - 11
    image.alloc("src", SMALL.beat_elems, data)
    dst = image.alloc("dst", SMALL.beat_elems)
    _load_then_store("savepc io, r0, fio\nsavepc store, r0, fst\nwait",
                     "li32 r8, -3\nli32 r9, -109231\nmul r2, r8, r9", image, dst, data)


BRANCHES = {"beq": lambda a, b: a == b, "bne": lambda a, b: a != b,
            "blt": lambda a, b: a < b, "bge": lambda a, b: a >= b,
            "bltu": lambda a, b: a % 2**32 < b % 2**32, "bgeu": lambda a, b: a % 2**32 >= b % 2**32}


@pytest.mark.parametrize("name", sorted(BRANCHES))
def test_branches_decide_right_and_take_two_cycles(name):
    """Each branch over pairs that tell signed from unsigned and equal from not: the outcome
    is the comparison's, the branch waits a cycle (its first registers the outcome), and a
    taken one has a fill cycle at its target."""
    pairs = [(3, 3), (3, 4), (4, 3), (-1, 1), (1, -1), (-5, -5), (-2**31, 2**31 - 1)]
    out = 100 * SMALL.beat_words
    lines = [f"li32 r9, {out}"]
    for k, (a, b) in enumerate(pairs):
        # r5 = 1 if the branch fell through, 2 if it was taken
        lines += [f"li32 r2, {a}", f"li32 r3, {b}", "li r5, 2", f"{name} r2, r3, over{k}",
                  "li r5, 1", f"over{k}: add r6, r5, r0", f"sw r6, {k}(r9)"]
    words = program("\n".join(lines) + "\nhalt\n")
    seen, mem = run(SMALL, dict(enumerate(words)), len(words), limit=3000)
    assert seen["halted"] and seen["error"] is None, seen
    trace = [(c.pc, c.stalled) for c in seen["trace"]]
    branches = [pc for pc, w in enumerate(words) if decode(w)["op"] == Op[name.upper()]]
    for k, ((a, b), pc) in enumerate(zip(pairs, branches)):
        taken = BRANCHES[name](a, b)
        assert dram_word(SMALL, mem, out + k) == (2 if taken else 1), (a, b)
        at = trace.index((pc, 1))
        expected = [(pc, 1), (pc, 0)] + ([(pc + 2, 1), (pc + 2, 0)] if taken else [(pc + 1, 0)])
        assert trace[at:at + len(expected)] == expected, (a, b, trace[at:at + 5])


def test_sw_forms_its_request_in_a_cycle_first():
    """SW takes two cycles when the memory takes its request at once: the first forms it."""
    out = 100 * SMALL.beat_words
    words = program(f"li32 r9, {out}\nli r4, 7\nsw r4, 0(r9)\nsw r4, 1(r9)\nhalt\n")
    seen, mem = run(SMALL, dict(enumerate(words)), len(words))
    assert seen["halted"] and seen["error"] is None, seen
    assert [dram_word(SMALL, mem, out + k) for k in range(2)] == [7, 7]
    for pc in (pc for pc, w in enumerate(words) if decode(w)["op"] == Op.SW):
        assert [c.stalled for c in seen["trace"] if c.pc == pc] == [1, 0], pc


@pytest.mark.verilator
def test_a_wait_right_after_a_commit_holds():
    """WAIT sees the dispatcher's count a cycle late: a WAIT in the cycle after a SAVEPC, with
    nothing unfinished before it, must still wait for that task. Here it separates a load
    into NBin and a store from NBin, so the store never waits on the hazard rule (it does,
    21 cycles, if the WAIT ends early), and it stores the beat loaded."""
    from dypipe.sw.image import DramImage
    image = DramImage(SMALL)
    data = np.arange(SMALL.beat_elems, dtype=np.int16) * 5 + 3
    src = image.alloc("src", SMALL.beat_elems, data)
    dst = image.alloc("dst", SMALL.beat_elems)
    result = _load_then_store("savepc io, r0, fio\nwait\nsavepc store, r0, fst\nwait",
                              f"li32 r2, {src.beat}", image, dst, data)
    assert result.counters["tasks"] == 2 and result.counters["stall_hazard"] == 0, result
