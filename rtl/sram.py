"""A bank of on-chip SRAM: a one-lane write port, a whole-row write port, two read ports."""

from amaranth import Module, Mux, unsigned
from amaranth.hdl import Instance, ClockSignal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["SRAM", "LaneWritePort", "RowWritePort", "ReadPort", "BACKENDS"]

#: ``"amaranth"`` builds the bank from :class:`amaranth.lib.memory.Memory` (for Amaranth's own
#: simulator); ``"verilog"`` instantiates ``rtl/verilog/dypipe_sram.v``, which has no zero-fill
#: initial block and so keeps large banks cheap to generate and to build with Verilator.
BACKENDS = ("amaranth", "verilog")

#: Widest row one Verilog bank instance holds (Amaranth caps an instance's outputs at 65535
#: bits, and there are two read ports).
MAX_INSTANCE_WIDTH = 8192


def LaneWritePort(addr_bits, lane_bits, lane_width):
    """Writes ``data`` into lane ``lane`` of row ``addr``, from the writer's side."""
    return wiring.Signature({"addr": Out(addr_bits), "lane": Out(max(1, lane_bits)),
                             "data": Out(lane_width), "en": Out(1)})


def RowWritePort(addr_bits, width):
    """Writes a whole row, from the writer's side."""
    return wiring.Signature({"addr": Out(addr_bits), "data": Out(width), "en": Out(1)})


def ReadPort(addr_bits, width):
    """A read port, from its user's side: ``data`` is valid the cycle after ``en``."""
    return wiring.Signature({"addr": Out(addr_bits), "en": Out(1), "data": In(width)})


class SRAM(wiring.Component):
    """``depth`` rows of ``width`` bits, in ``lanes`` lanes.

    Members
    -------
    w_lane : In(LaneWritePort)
    w_row : In(RowWritePort)
    r : In(ReadPort).array(2)
        A read returns the row as it was before a write in the same cycle.
    """

    def __init__(self, *, width, depth, lanes=1, backend="amaranth"):
        if width % lanes or lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two dividing width {width}, "
                             f"not {lanes}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        self._width, self._depth, self._lanes, self._backend = width, depth, lanes, backend
        self._addr_bits = max(1, (depth - 1).bit_length())
        self._lane_bits = (lanes - 1).bit_length()
        super().__init__({
            "w_lane": In(LaneWritePort(self._addr_bits, self._lane_bits, width // lanes)),
            "w_row": In(RowWritePort(self._addr_bits, width)),
            "r": In(ReadPort(self._addr_bits, width)).array(2),
        })

    @property
    def addr_bits(self):
        return self._addr_bits

    @property
    def params(self):
        """The constructor's arguments but ``backend``: ``SRAM(**params, backend=...)`` builds
        this bank with either backend (the equivalence check builds both)."""
        return {"width": self._width, "depth": self._depth, "lanes": self._lanes}

    def elaborate(self, platform):
        m = Module()
        lane_width = self._width // self._lanes
        if self._backend == "verilog":
            # A wide row is split into lane groups, each its own dypipe_sram.
            groups = min(self._lanes, -(-self._width // MAX_INSTANCE_WIDTH))
            lanes = self._lanes // groups
            bits = self._width // groups
            inner = (lanes - 1).bit_length()
            for g in range(groups):
                part = slice(g * bits, (g + 1) * bits)
                group_hit = (self.w_lane.lane >> inner) == g if groups > 1 else 1
                m.submodules[f"bank{g}"] = Instance(
                    "dypipe_sram",
                    p_WIDTH=bits, p_DEPTH=self._depth, p_ADDR_BITS=self._addr_bits,
                    p_LANES=lanes, p_LANE_BITS=max(1, inner),
                    i_clk=ClockSignal(),
                    i_lane_en=self.w_lane.en & group_hit, i_lane_addr=self.w_lane.addr,
                    i_lane_sel=self.w_lane.lane[:inner] if inner else 0,
                    i_lane_data=self.w_lane.data,
                    i_row_en=self.w_row.en, i_row_addr=self.w_row.addr,
                    i_row_data=self.w_row.data[part],
                    **{f"i_r{i}_{name}": getattr(self.r[i], name)
                       for i in range(2) for name in ("en", "addr")},
                    **{f"o_r{i}_data": self.r[i].data[part] for i in range(2)},
                )
            return m
        m.submodules.mem = mem = Memory(shape=unsigned(self._width), depth=self._depth, init=[])
        granularity = lane_width if self._lanes > 1 else None
        lane = mem.write_port(granularity=granularity)
        row = mem.write_port(granularity=granularity)
        m.d.comb += [
            lane.addr.eq(self.w_lane.addr),
            lane.data.eq(self.w_lane.data.replicate(self._lanes)),
            lane.en.eq(Mux(self.w_lane.en, 1 << self.w_lane.lane[:self._lane_bits], 0)
                       if self._lanes > 1 else self.w_lane.en),
            row.addr.eq(self.w_row.addr),
            row.data.eq(self.w_row.data),
            row.en.eq(self.w_row.en.replicate(len(row.en))),
        ]
        for r in self.r:
            port = mem.read_port()
            m.d.comb += [port.addr.eq(r.addr), port.en.eq(r.en), r.data.eq(port.data)]
        return m
