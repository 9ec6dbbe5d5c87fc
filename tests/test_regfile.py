"""The scalar register file (``rtl/scalar.py``): a memory with a read port per register read,
which must behave as the flip-flops it replaced: writes land at the clock edge, ``r0`` reads
zero whatever is written to it, and the same register read twice shares one port. A block
read's indexes (``InsnFlow.indexes_ahead``) wrap past r31 to r0 and follow the instruction
register."""

import random

from amaranth import Module, Signal
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from dypipe.rtl.scalar import RegFile, InsnFlow
from dypipe.rtl.sequencer import ErrorReport
from dypipe.rtl.sram import ReadPort
from dypipe.rtl.task import PC_BITS
from dypipe.sw.isa import FIELDS


def test_register_file_behaves_as_flip_flops():
    m = Module()
    m.submodules.rf = rf = RegFile("t")
    idx, value, we = Signal(5), Signal(32), Signal()
    with m.If(we):
        rf.write(m, idx, value)
    single = rf.read(idx)
    assert rf.read(idx) is single and len(rf._reads) == 1

    model = [0] * 32
    rng = random.Random(1)

    async def bench(ctx):
        for _ in range(300):
            i, v, w = rng.randrange(32), rng.getrandbits(32), rng.random()
            ctx.set(idx, i)
            ctx.set(value, v)
            ctx.set(we, w < 0.6)
            # Before the edge: the old contents, r0 as zero.
            assert ctx.get(single) == model[i]
            await ctx.tick()
            if w < 0.6 and i != 0:
                model[i] = v
        assert model[0] == 0 and any(model)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_the_later_of_two_writes_in_a_cycle_wins():
    """The write port ORs each call's value under its select; the selects keep the order of
    the calls, as assignments would: where both act in one cycle, only the later call's
    write lands (there is one write port)."""
    m = Module()
    m.submodules.rf = rf = RegFile("t")
    idx_a, idx_b, val_a, val_b = Signal(5), Signal(5), Signal(32), Signal(32)
    we_a, we_b = Signal(), Signal()
    with m.If(we_a):
        rf.write(m, idx_a, val_a)
    with m.If(we_b):
        rf.write(m, idx_b, val_b)
    probe = Signal(5)
    out = rf.read(probe)
    model = [0] * 32
    rng = random.Random(2)

    async def bench(ctx):
        both = 0
        for _ in range(400):
            a, b = rng.randrange(32), rng.choice([rng.randrange(32), None])
            wa, wb = rng.random() < 0.7, rng.random() < 0.7
            b = a if b is None else b                   # often the same register
            va, vb = rng.getrandbits(32), rng.getrandbits(32)
            for sig, v in ((idx_a, a), (idx_b, b), (val_a, va), (val_b, vb), (we_a, wa),
                           (we_b, wb)):
                ctx.set(sig, v)
            await ctx.tick()
            # One write port: the later call acting takes it.
            i, v = (b, vb) if wb else (a, va)
            if (wa or wb) and i != 0:
                model[i] = v
            both += wa and wb and a == b and a != 0
            for r in range(32):
                ctx.set(probe, r)
                assert ctx.get(out) == model[r], r
        assert both > 10

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_block_indexes_follow_the_instruction_register():
    """``indexes_ahead("b", 4)`` computes ``b + 1`` .. ``b + 3`` from the memory's word as the
    instruction register takes it: at every cycle they are the register's own ``b`` plus one
    to three, modulo 32, through steps, stalls and jumps (each followed by a fill)."""
    rng = random.Random(3)
    words = [rng.getrandbits(32) for _ in range(256)]
    m = Module()
    m.submodules.imem = imem = Memory(shape=32, depth=len(words), init=words)
    port = imem.read_port()
    r = ReadPort(8, 32).create()
    m.d.comb += [port.addr.eq(r.addr), port.en.eq(r.en), r.data.eq(port.data)]
    pc, err = Signal(PC_BITS), ErrorReport().create()
    step, jump_to, jump = Signal(), Signal(8), Signal()
    flow = InsnFlow(m, len(words), pc, r, err)
    with m.FSM():
        with m.State("START"):
            flow.jump(0)
        with m.State("EXEC"):
            with m.If(~flow.ready):
                flow.fill()
            with m.Elif(jump):
                flow.jump(jump_to)
            with m.Elif(step):
                flow.advance()
        with m.State("ERROR"):
            pass
    indexes = flow.indexes_ahead("b", 4)
    lsb, width = FIELDS["b"]

    async def bench(ctx):
        checked = 0
        for _ in range(300):
            await ctx.tick()
            ctx.set(jump, rng.random() < 0.1)
            ctx.set(jump_to, rng.randrange(len(words) // 2))
            ctx.set(step, rng.random() < 0.7)
            if ctx.get(flow.ready):
                b = (ctx.get(flow.ir) >> lsb) & ((1 << width) - 1)
                assert ctx.get(flow.ir) == words[ctx.get(pc)]
                assert [ctx.get(i) for i in indexes] == [(b + k) % 32 for k in range(4)]
                checked += 1
        assert checked > 100

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
