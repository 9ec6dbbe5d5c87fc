"""The control unit's copy engine (boot, OVERLAY and the background copy of PREFETCH / ENTER) in
Amaranth's simulator, with the Python DRAM model: which words land where, how long it takes,
what waits for a copy, and the errors."""

import dataclasses
import random
from typing import NamedTuple

import pytest
from amaranth import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from dypipe.config import PRESETS, WORD_BITS
from dypipe.rtl.control_unit import ControlUnit
from dypipe.rtl.imem_copy import ImemCopy, copy_fifo_beats
from dypipe.rtl.mem_port import MemArbiter, DramPort
from dypipe.sw.asm import assemble
from dypipe.sw.isa import Err
from dypipe.tb.amaranth_sim import dram_model

SMALL = PRESETS["small"]
#: The paper's memory port (32-byte beats of 8 words, latency 100) on a small array.
WIDE = dataclasses.replace(SMALL, name="wide-port", pe_rows=16, pe_cols=16,
                           dram_bytes_per_cycle=32, dram_latency=100)
CONFIGS = [SMALL, WIDE]


class Bench(wiring.Component):
    """The control unit with its instruction memory and the memory port to itself; it runs no
    tasks."""

    def __init__(self, config):
        self.config = config
        self.ctrl = ControlUnit(config)
        self.arb = MemArbiter(config, 1)
        self.imem = Memory(shape=unsigned(WORD_BITS), depth=config.imem_words, init=[])
        super().__init__({"dram": Out(DramPort(config, self.arb.tag_bits))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.ctrl, m.submodules.arb, m.submodules.imem = self.ctrl, self.arb, self.imem
        w, r = self.imem.write_port(), self.imem.read_port()
        m.d.comb += [w.addr.eq(self.ctrl.imem_w.addr), w.data.eq(self.ctrl.imem_w.data),
                     w.en.eq(self.ctrl.imem_w.en), r.addr.eq(self.ctrl.imem_r.addr),
                     r.en.eq(self.ctrl.imem_r.en), self.ctrl.imem_r.data.eq(r.data),
                     self.ctrl.task.ready.eq(1), self.ctrl.tasks_idle.eq(1)]
        wiring.connect(m, self.ctrl.mem, self.arb.clients[0])
        wiring.connect(m, self.arb.dram, wiring.flipped(self.dram))
        return m


def dram_of(config, words):
    """The DRAM model's beats holding ``words`` (word address -> 32-bit word)."""
    mem = {}
    for addr, word in words.items():
        beat, lane = divmod(addr, config.beat_words)
        mem[beat] = mem.get(beat, 0) | word << (WORD_BITS * lane)
    return mem


def dram_word(config, mem, addr):
    beat, lane = divmod(addr, config.beat_words)
    return mem.get(beat, 0) >> (WORD_BITS * lane) & 0xFFFF_FFFF


class Cycle(NamedTuple):
    pc: int
    stalled: bool
    imem_written: bool


def run(config, words, prog_len, *, imem_words=64, limit=3000):
    """Boot ``prog_len`` words of ``words`` (DRAM word address -> word) and run until HALT or
    an error. Returns the boot cycles (start to the first instruction), whether it halted,
    the error ``(code, pc, addr)`` or None, the first ``imem_words`` of the instruction memory,
    a trace of the cycles after the boot (``(pc, stalled, imem written)`` each) and the
    DRAM."""
    bench = Bench(config)
    mem = dram_of(config, words)
    seen = {"boot": None, "halted": False, "error": None, "trace": []}

    async def testbench(ctx):
        ctrl = bench.ctrl
        ctx.set(ctrl.prog_len, prog_len)
        ctx.set(ctrl.start, 1)
        for cycle in range(limit):
            if seen["boot"] is None and ctx.get(ctrl.running):
                seen["boot"] = cycle
            if ctx.get(ctrl.err.valid):
                seen["error"] = (Err(ctx.get(ctrl.err.code)), ctx.get(ctrl.err.pc),
                                 ctx.get(ctrl.err.addr))
                break
            if ctx.get(ctrl.halted):
                seen["halted"] = True
                break
            if ctx.get(ctrl.running):
                seen["trace"].append(Cycle(ctx.get(ctrl.pc), ctx.get(ctrl.stall),
                                           ctx.get(ctrl.imem_w.en)))
            await ctx.tick()
        seen["imem"] = [ctx.get(bench.imem.data[i]) for i in range(imem_words)]

    sim = Simulator(bench)
    sim.add_clock(1e-8)
    sim.add_testbench(dram_model(bench.dram, config, mem), background=True)
    sim.add_testbench(testbench)
    sim.run()
    return seen, mem


def program(text):
    return assemble(text, "<test>").words


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_boot_of_an_odd_word_count(config):
    """Exactly ``prog_len`` words land, the program runs, and the boot takes about one cycle a
    word plus one DRAM round trip."""
    result = 4 * config.beat_words * 100 + 3
    words = program(f"li r2, 5\nli r3, {result}\nsw r2, 0(r3)\nnop\nnop\nnop\nhalt\n")
    assert len(words) % 2 == 1
    image = dict(enumerate(words))
    image[len(words)] = 0xDEAD_BEEF             # in the last beat, past the program
    seen, mem = run(config, image, len(words))
    assert seen["halted"] and seen["error"] is None, seen
    assert seen["imem"][:len(words)] == words
    assert seen["imem"][len(words)] == 0, "the boot wrote past prog_len"
    assert dram_word(config, mem, result) == 5
    assert seen["boot"] <= len(words) + config.dram_latency + 5, seen["boot"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_boot_streams_one_word_a_cycle(config):
    n = 200
    words = program("nop\n" * (n - 1) + "halt\n")
    seen, _ = run(config, dict(enumerate(words)), n, imem_words=n)
    assert seen["halted"] and seen["imem"] == words
    # The first word needs one round trip and the FIFO's two cycles; then one word a cycle.
    assert seen["boot"] <= n + config.dram_latency + 5, (
        f"{seen['boot']} cycles for {n} words with a {copy_fifo_beats(config)}-beat FIFO")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_overlay_from_an_unaligned_address_over_itself(config):
    """OVERLAY copies r[b] words from DRAM word r[a] (the middle of a beat) over the code that
    runs it, and continues at the destination; registers carry over."""
    src = 40 * config.beat_words + 1
    result = 80 * config.beat_words + 2
    segment = program("li r2, 77\nsw r2, 0(r3)\nli r4, 9\nsw r4, 1(r3)\nhalt\n")
    boot = program(f"li r3, {result}\nli32 r1, {src}\nli r31, {len(segment)}\n"
                   f"overlay r1, r31, 2\n")
    assert 2 + len(segment) > len(boot) - 1, "the copy must cover the OVERLAY itself"
    image = dict(enumerate(boot))
    image.update({src + i: w for i, w in enumerate(segment)})
    image[src - 1] = image[src + len(segment)] = 0xFFFF_FFFF      # neighbours, not copied
    seen, mem = run(config, image, len(boot))
    assert seen["halted"] and seen["error"] is None, seen
    assert seen["imem"][:2] == boot[:2]
    assert seen["imem"][2:2 + len(segment)] == segment
    assert seen["imem"][2 + len(segment)] == 0
    assert (dram_word(config, mem, result), dram_word(config, mem, result + 1)) == (77, 9)


@pytest.mark.parametrize("op", ["overlay", "prefetch"])
@pytest.mark.parametrize("what,src,count,dest,code,addr", [
    ("count 0", 100, 0, 8, Err.BAD_PARAM, 0),
    ("source past the DRAM", SMALL.dram_bytes // 4 - 3, 5, 8, Err.DRAM_RANGE,
     SMALL.dram_bytes // 4 + 1),
    ("destination past the imem", 100, 5, SMALL.imem_words - 2, Err.PC_RANGE,
     SMALL.imem_words + 2),
])
def test_copy_errors(op, what, src, count, dest, code, addr):
    """OVERLAY and PREFETCH check their operands before anything moves, and report the
    instruction's pc."""
    boot = program(f"li32 r1, {src}\nli r31, {count}\nnop\n{op} r1, r31, {dest}\nhalt\n")
    image = dict(enumerate(boot))
    image.update({src + i: 0x0C00_0000 for i in range(8)})
    seen, _ = run(SMALL, image, len(boot), imem_words=16)
    assert seen["error"] == (code, 4, addr), f"{what}: {seen['error']}"
    assert seen["imem"] == boot + [0] * (16 - len(boot)), f"{what}: the imem changed"


# -- the background copy: PREFETCH, ENTER --------------------------------------------------

def segment(text, words):
    """``text`` assembled, padded with leading NOPs to ``words`` words."""
    body = program(text)
    return program("nop\n" * (words - len(body)) + text)


def stalls_at(seen, pc):
    return sum(c.stalled for c in seen["trace"] if c.pc == pc)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_prefetch_runs_while_the_control_unit_goes_on(config):
    """PREFETCH returns at once; the instructions after it run while the words land; ENTER
    waits for the last word and continues in the new words. The whole takes about as long as
    the copy alone, not the copy plus the instructions."""
    work = config.dram_latency + 30       # the copy has written words before it ends
    n, dest, src = work + config.dram_latency + 40, work + 8, 64 * config.beat_words + 3
    result = 100 * config.beat_words
    seg = program("sw r5, 0(r3)\nhalt\n" + "nop\n" * (n - 2))
    boot = program(f"li r3, {result}\nli32 r1, {src}\nli r31, {n}\nprefetch r1, r31, {dest}\n"
                   + "addi r5, r5, 1\n" * work + f"enter {dest}\n")
    enter = len(boot) - 1
    prefetch = enter - work - 1
    image = dict(enumerate(boot))
    image.update({src + i: w for i, w in enumerate(seg)})
    seen, mem = run(config, image, len(boot), imem_words=dest + n + 1)
    assert seen["halted"] and seen["error"] is None, seen
    assert seen["imem"][dest:dest + n] == seg and seen["imem"][dest + n] == 0
    assert dram_word(config, mem, result) == work
    trace = seen["trace"]
    start = next(i for i, c in enumerate(trace) if c.pc == prefetch)
    # PREFETCH's first cycle checks; then it and every instruction up to ENTER ran in one
    # cycle, the copy writing meanwhile.
    assert [c.stalled for c in trace[start:start + work + 2]] == [1] + [0] * (work + 1)
    assert sum(c.imem_written for c in trace[start:start + work + 2]) > 0
    copy = n + config.dram_latency + 3
    assert stalls_at(seen, enter) <= copy - work, (stalls_at(seen, enter), copy, work)
    # (+ 2 since PREFETCH checks in a cycle of its own and SW forms its request in one)
    assert len(trace) - start <= copy + 7, f"{len(trace) - start} cycles from PREFETCH on"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
@pytest.mark.parametrize("second", ["prefetch", "overlay"])
def test_a_second_copy_waits_for_the_first(config, second):
    """A PREFETCH or OVERLAY while a copy is under way stalls until that copy has landed, then
    makes its own; both land whole."""
    n, m, dest_a, dest_b = 64, 24, 16, 96
    src_a, src_b = 80 * config.beat_words + 1, 120 * config.beat_words
    result = 200 * config.beat_words
    seg_a = program("nop\n" * n)
    seg_b = segment("li r6, 7\nsw r6, 0(r3)\nhalt\n", m)
    tail = f"enter {dest_b}\n" if second == "prefetch" else ""
    boot = program(f"li r3, {result}\nli32 r1, {src_a}\nli r31, {n}\nprefetch r1, r31, {dest_a}\n"
                   f"li32 r1, {src_b}\nli r31, {m}\n{second} r1, r31, {dest_b}\n{tail}")
    image = dict(enumerate(boot))
    image.update({src_a + i: w for i, w in enumerate(seg_a)})
    image.update({src_b + i: w for i, w in enumerate(seg_b)})
    seen, mem = run(config, image, len(boot), imem_words=dest_b + m)
    assert seen["halted"] and seen["error"] is None, seen
    assert seen["imem"][dest_a:dest_a + n] == seg_a
    assert seen["imem"][dest_b:dest_b + m] == seg_b
    assert dram_word(config, mem, result) == 7
    # The second copy instruction waited for most of the first copy (it started 3 cycles later).
    waited = stalls_at(seen, boot.index(program(f"{second} r1, r31, {dest_b}")[0]))
    assert waited >= n + config.dram_latency - 3, waited


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_lw_and_sw_wait_for_the_copy(config):
    """The copy holds the control unit's memory port: an LW or SW behind a PREFETCH waits for
    it, then reads or writes the right word, and the copy is intact. HALT waits for the last
    copy to land."""
    n, dest, src = 48, 24, 50 * config.beat_words
    data, result = 200 * config.beat_words + 1, 220 * config.beat_words
    seg, last = program("nop\n" * n), program("li r9, 9\n" * n)
    boot = program(f"li r3, {result}\nli r7, {data}\nli32 r1, {src}\nli r31, {n}\n"
                   f"prefetch r1, r31, {dest}\nlw r6, 0(r7)\nsw r6, 1(r3)\n"
                   f"prefetch r1, r31, {dest}\nsw r7, 0(r3)\n"
                   f"addi r1, r1, {n}\nprefetch r1, r31, {dest + n}\nhalt\n")
    lw = boot.index(program("lw r6, 0(r7)")[0])
    sw = boot.index(program("sw r7, 0(r3)")[0])
    image = dict(enumerate(boot))
    image.update({src + i: w for i, w in enumerate(seg + last)})
    image[data] = 0x1234_5678
    seen, mem = run(config, image, len(boot), imem_words=dest + 2 * n + 1)
    assert seen["halted"] and seen["error"] is None, seen
    assert seen["imem"][dest:dest + 2 * n] == seg + last, "a copy did not land before HALT"
    assert seen["imem"][dest + 2 * n] == 0
    assert dram_word(config, mem, result + 1) == 0x1234_5678
    assert dram_word(config, mem, result) == data
    for pc in (lw, sw, len(boot) - 1):
        assert stalls_at(seen, pc) >= n, (pc, stalls_at(seen, pc))


def test_enter_with_no_copy_is_a_jump():
    result = 60 * SMALL.beat_words
    boot = program(f"li r3, {result}\nenter 4\nhalt\nhalt\nli r6, 3\nsw r6, 0(r3)\nhalt\n")
    seen, mem = run(SMALL, dict(enumerate(boot)), len(boot))
    assert seen["halted"] and seen["error"] is None, seen
    assert dram_word(SMALL, mem, result) == 3
    # One instruction a cycle, a fill cycle after the boot and after the jump, and SW's first
    # cycle, which forms its request.
    assert [(c.pc, c.stalled) for c in seen["trace"]] == [
        (0, 1), (0, 0), (1, 0), (4, 1), (4, 0), (5, 1), (5, 0), (6, 0)], seen["trace"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_the_engine_alone_reads_exactly_the_beats_it_writes(config):
    """``ImemCopy`` by itself, under random memory latency and back-pressure, and random
    ``start`` pulses while busy: each copy requests exactly the beats its words span, in order,
    writes each word once where it belongs, and a copy of 0 words requests nothing."""
    dut = ImemCopy(config)
    bw = config.beat_words
    rng = random.Random(11 + bw)

    def word(addr):
        return (addr * 2654435761 + 17) & 0xFFFF_FFFF
    copies = [(rng.randrange(0, 4000), rng.choice([0, 1, 2, bw - 1, bw, bw + 1,
                                                   rng.randrange(1, 60)]),
               rng.randrange(0, config.imem_words - 64)) for _ in range(40)]
    log = []

    async def bench(ctx):
        inflight = []                       # (cycle due, beat)
        cycle = 0
        for src, count, dst in copies:
            requests, writes = [], {}
            ctx.set(dut.src, src)
            ctx.set(dut.count, count)
            ctx.set(dut.dst, dst)
            ctx.set(dut.start, 1)
            started = False
            while True:
                ready = rng.random() < 0.7
                ctx.set(dut.mem.req.ready, ready)
                due = [inflight[0][1]] if inflight and inflight[0][0] <= cycle else []
                ctx.set(dut.mem.resp_valid, bool(due))
                if due:
                    inflight.pop(0)
                    ctx.set(dut.mem.resp_data, sum(word(due[0] * bw + i) << (32 * i)
                                                   for i in range(bw)))
                await ctx.delay(1e-9)
                busy = ctx.get(dut.busy)
                if ctx.get(dut.mem.req.valid) and ready:
                    beat = ctx.get(dut.mem.req.payload.addr)
                    requests.append(beat)
                    inflight.append((cycle + rng.randrange(1, 6), beat))
                if ctx.get(dut.imem_w.en):
                    addr = ctx.get(dut.imem_w.addr)
                    assert addr not in writes
                    writes[addr] = ctx.get(dut.imem_w.data)
                await ctx.tick()
                cycle += 1
                ctx.set(dut.start, 0)
                if not started:
                    started = True
                    # a start while busy is ignored (a copy of 0 words is never busy)
                    ctx.set(dut.start, count > 0 and rng.random() < 0.5)
                    ctx.set(dut.count, rng.randrange(0, 60))
                    continue
                if not busy:
                    break
            ctx.set(dut.start, 0)
            for _ in range(8):                                  # nothing more goes out
                ctx.set(dut.mem.req.ready, 1)
                await ctx.delay(1e-9)
                assert not ctx.get(dut.mem.req.valid)
                await ctx.tick()
                cycle += 1
            assert not inflight
            log.append((src, count, dst, requests, writes))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for src, count, dst, requests, writes in log:
        first, last = src // bw, (src + count - 1) // bw
        assert requests == (list(range(first, last + 1)) if count else []), (src, count)
        assert writes == {dst + i: word(src + i) for i in range(count)}, (src, count, dst)
