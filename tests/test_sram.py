"""The SRAM bank's Amaranth description (the live-value-table memory) against a Python model
of its contract, in Amaranth's simulator: random writes and reads, same-cycle reads and
writes of one row, both write ports on one row and lane, reads that hold while ``en`` is low.
"""

import random

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from dypipe.rtl.sram import SRAM


class Model:
    """The bank as ``rtl/verilog/dypipe_sram.v`` states it: a read returns the row before the
    cycle's writes; the row write comes first, the lane write second (it wins a shared lane)."""

    def __init__(self, width, depth, lanes):
        self.lane_width, self.lanes = width // lanes, lanes
        self.rows = [0] * depth
        self.data = [0, 0]

    def step(self, reads, row, lane):
        for i, (en, addr) in enumerate(reads):
            if en:
                self.data[i] = self.rows[addr]
        if row is not None:
            addr, data = row
            self.rows[addr] = data
        if lane is not None:
            addr, sel, data = lane
            shift, mask = sel * self.lane_width, (1 << self.lane_width) - 1
            self.rows[addr] = self.rows[addr] & ~(mask << shift) | data << shift


def _stimulus(rng, depth, lanes, lane_width, row_write, width):
    """One cycle's inputs; small addresses often, so ports meet on a row and a lane."""
    def addr():
        return rng.randrange(min(depth, 2)) if rng.random() < 0.5 else rng.randrange(depth)
    reads = [(rng.random() < 0.6, addr()) for _ in range(2)]
    row = (addr(), rng.getrandbits(width)) if row_write and rng.random() < 0.4 else None
    lane = ((addr(), rng.randrange(lanes), rng.getrandbits(lane_width))
            if rng.random() < 0.5 else None)
    if row and lane and rng.random() < 0.3:
        lane = (row[0], *lane[1:])      # both ports on one row (and, with one lane, one lane)
    return reads, row, lane


@pytest.mark.parametrize("width,depth,lanes,row_write", [
    (32, 8, 4, True), (16, 4, 1, True), (64, 6, 2, True), (32, 8, 4, False)])
def test_sram_matches_model(width, depth, lanes, row_write):
    dut = SRAM(width=width, depth=depth, lanes=lanes, row_write=row_write)
    model = Model(width, depth, lanes)
    rng = random.Random(f"{width}-{depth}-{lanes}-{row_write}")
    lane_width = width // lanes
    collisions = []

    async def testbench(ctx):
        for cycle in range(600):
            reads, row, lane = _stimulus(rng, depth, lanes, lane_width, row_write, width)
            for port, (en, addr) in zip(dut.r, reads):
                ctx.set(port.en, en)
                ctx.set(port.addr, addr)
            if row_write:
                ctx.set(dut.w_row.en, row is not None)
                if row:
                    ctx.set(dut.w_row.addr, row[0])
                    ctx.set(dut.w_row.data, row[1])
            ctx.set(dut.w_lane.en, lane is not None)
            if lane:
                ctx.set(dut.w_lane.addr, lane[0])
                ctx.set(dut.w_lane.lane, lane[1])
                ctx.set(dut.w_lane.data, lane[2])
            if row and lane and row[0] == lane[0]:
                collisions.append(cycle)
            await ctx.tick()
            model.step(reads, row, lane)
            for i, port in enumerate(dut.r):
                got, exp = ctx.get(port.data), model.data[i]
                assert got == exp, (f"cycle {cycle}: r[{i}].data = {got:#x}, expected {exp:#x} "
                                    f"(reads {reads}, row write {row}, lane write {lane})")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    if row_write:
        assert len(collisions) > 20, f"only {len(collisions)} cycles wrote one row twice"


def test_sram_without_row_write_has_no_row_port():
    banks = [SRAM(width=32, depth=8, lanes=4, row_write=flag) for flag in (False, True)]
    for bank in banks:
        Fragment.get(bank, None)
    assert "w_row" not in banks[0].signature.members
    assert banks[1].params == {"width": 32, "depth": 8, "lanes": 4, "row_write": True}
