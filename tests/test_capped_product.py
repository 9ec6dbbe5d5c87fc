"""``capped_product`` and ``split_extent`` (``rtl/unit_port.py``), the narrow multipliers of the
units' range checks: exact below their width, and past any limit below ``2**bits`` exactly when
the true product is, so a check built on them fails on the same commands."""

import random

from amaranth import Module, Mux, Signal
from amaranth.sim import Simulator

from dypipe.rtl.unit_port import (capped_product, capped_product_of_decrement, latched,
                                  split_extent)


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


def test_capped_product_of_decrement_is_capped_product_of_the_decrement():
    """Equal to ``capped_product(a - 1, b)`` everywhere, ``a`` = 0 (which wraps) included."""
    bits = 9
    a, b = Signal(20), Signal(20)
    m = Module()
    got, want = Signal(2 * bits + 1), Signal(2 * bits + 1)
    m.d.comb += [got.eq(capped_product_of_decrement(a, b, bits)),
                 want.eq(capped_product(a - 1, b, bits))]
    rng = random.Random(11)
    edges = [0, 1, 2, 2 ** bits - 1, 2 ** bits, 2 ** bits + 1, 2 ** bits + 2, 2 ** 20 - 1]
    cases = [(x, y) for x in edges for y in edges]
    cases += [(rng.choice((rng.randrange(2 ** 20), rng.randrange(40))),
               rng.choice((rng.randrange(2 ** 20), rng.randrange(40)))) for _ in range(400)]

    async def bench(ctx):
        for x, y in cases:
            ctx.set(a, x)
            ctx.set(b, y)
            assert ctx.get(got) == ctx.get(want), (x, y)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_split_extent_is_the_decremented_product_a_cycle_later():
    bits = 9
    count, stride, zero = Signal(20), Signal(20), Signal()
    m = Module()
    term = Signal(2 * bits + 2)
    held = latched(m, 1, Mux(zero, 0, stride), "held")        # the unit's stride register
    m.d.comb += term.eq(split_extent(m, 1, count, stride, held, bits, "t", zero=zero))

    rng = random.Random(7)
    edges = [1, 2, 3, 2 ** bits - 1, 2 ** bits, 2 ** bits + 1, 2 ** bits + 2, 2 ** 20 - 1]
    cases = [(x, y, z) for x in edges for y in [0] + edges for z in (0, 1)]
    cases += [(rng.choice((rng.randrange(1, 2 ** 20), rng.randrange(1, 40))),
               rng.choice((rng.randrange(2 ** 20), rng.randrange(40))), 0) for _ in range(400)]

    async def bench(ctx):
        for x, y, z in cases:
            ctx.set(count, x)
            ctx.set(stride, y)
            ctx.set(zero, z)
            await ctx.tick()
            got, want = ctx.get(term), 0 if z else (x - 1) * y
            if x < 2 ** bits and y < 2 ** bits or want == 0:
                assert got == want, (x, y, z)
            for limit in (1, 37, 2 ** bits - 1):
                assert (got >= limit) == (want >= limit), (x, y, z, limit)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
