"""The control unit's copy engine (boot and OVERLAY) in Amaranth's simulator, with the Python
DRAM model: which words land where, how long it takes, and the errors."""

import dataclasses

import pytest
from amaranth import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from dypipe.config import PRESETS, WORD_BITS
from dypipe.rtl.control_unit import ControlUnit
from dypipe.rtl.imem_copy import copy_fifo_beats
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


def run(config, words, prog_len, *, imem_words=64, limit=3000):
    """Boot ``prog_len`` words of ``words`` (DRAM word address -> word) and run until HALT or
    an error. Returns the boot cycles (start to the first instruction), whether it halted,
    the error ``(code, pc, addr)`` or None, the first ``imem_words`` of the instruction memory
    and the DRAM."""
    bench = Bench(config)
    mem = dram_of(config, words)
    seen = {"boot": None, "halted": False, "error": None}

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


@pytest.mark.parametrize("what,src,count,dest,code,addr", [
    ("count 0", 100, 0, 8, Err.BAD_PARAM, 0),
    ("source past the DRAM", SMALL.dram_bytes // 4 - 3, 5, 8, Err.DRAM_RANGE,
     SMALL.dram_bytes // 4 + 1),
    ("destination past the imem", 100, 5, SMALL.imem_words - 2, Err.PC_RANGE,
     SMALL.imem_words + 2),
])
def test_overlay_errors(what, src, count, dest, code, addr):
    boot = program(f"li32 r1, {src}\nli r31, {count}\nnop\noverlay r1, r31, {dest}\nhalt\n")
    image = dict(enumerate(boot))
    image.update({src + i: 0x0C00_0000 for i in range(8)})
    seen, _ = run(SMALL, image, len(boot), imem_words=16)
    assert seen["error"] == (code, 4, addr), f"{what}: {seen['error']}"
    assert seen["imem"] == boot + [0] * (16 - len(boot)), f"{what}: the imem changed"
