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
