"""``capped_product`` (``rtl/unit_port.py``), the narrow multiplier of the units' range checks:
exact below its width, and past any limit below ``2**bits`` exactly when the true product is,
so a check built on it fails on the same commands."""

import random

from amaranth import Module, Signal
from amaranth.sim import Simulator

from dypipe.rtl.unit_port import capped_product


def test_capped_product_keeps_every_range_check():
    bits = 9
    a, b, c = Signal(20), Signal(20), Signal(20)
    inner = capped_product(a, b, bits)
    outer = capped_product(inner, c, bits)           # a product of three, as CONV's weights
    m = Module()
    probe, probe3 = Signal(len(inner)), Signal(len(outer))
    m.d.comb += [probe.eq(inner), probe3.eq(outer)]

    rng = random.Random(5)
    edges = [0, 1, 2, 2 ** bits - 1, 2 ** bits, 2 ** bits + 1, 2 ** 20 - 1]
    cases = [(x, y, z) for x in edges for y in edges for z in (1, 3)]
    cases += [tuple(rng.choice((rng.randrange(2 ** 20), rng.randrange(40))) for _ in range(3))
              for _ in range(400)]

    async def bench(ctx):
        for x, y, z in cases:
            ctx.set(a, x)
            ctx.set(b, y)
            ctx.set(c, z)
            got, got3 = ctx.get(probe), ctx.get(probe3)
            if x < 2 ** bits and y < 2 ** bits:
                assert got == x * y
            for limit in (1, 37, 2 ** bits - 1):
                assert (got >= limit) == (x * y >= limit), (x, y, limit)
                assert (got3 >= limit) == (x * y * z >= limit), (x, y, z, limit)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
