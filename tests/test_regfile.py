"""The scalar register file (``rtl/scalar.py``): a memory with a read port per register read,
which must behave as the flip-flops it replaced: writes land at the clock edge, ``r0`` reads
zero whatever is written to it, a block read wraps past r31 to r0, and the same register read
twice shares one port."""

import random

from amaranth import Module, Signal
from amaranth.sim import Simulator

from dypipe.rtl.scalar import RegFile


def test_register_file_behaves_as_flip_flops():
    m = Module()
    m.submodules.rf = rf = RegFile("t")
    idx, base, value, we = Signal(5), Signal(5), Signal(32), Signal()
    with m.If(we):
        rf.write(m, idx, value)
    single = rf.read(idx)
    block = rf.read_block(base, 4)
    assert rf.read(idx) is single and len(rf._reads) == 5

    model = [0] * 32
    rng = random.Random(1)

    async def bench(ctx):
        for _ in range(300):
            i, b, v, w = rng.randrange(32), rng.randrange(32), rng.getrandbits(32), rng.random()
            ctx.set(idx, i)
            ctx.set(base, b)
            ctx.set(value, v)
            ctx.set(we, w < 0.6)
            # Before the edge: the old contents, r0 as zero, the block wrapping.
            assert ctx.get(single) == model[i]
            assert [ctx.get(s) for s in block] == [model[(b + k) % 32] for k in range(4)]
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
