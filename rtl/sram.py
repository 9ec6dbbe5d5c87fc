"""A bank of on-chip SRAM: two write ports with lane enables, two registered read ports."""

from amaranth.hdl import Instance, ClockSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.lib.memory import Memory
from amaranth import Module, unsigned

__all__ = ["SRAM", "WritePort", "ReadPort", "BACKENDS"]

#: ``"amaranth"`` builds the bank from :class:`amaranth.lib.memory.Memory` (for Amaranth's own
#: simulator); ``"verilog"`` instantiates ``rtl/verilog/dypipe_sram.v``, which has no zero-fill
#: initial block and so keeps large banks cheap to generate and to build with Verilator.
BACKENDS = ("amaranth", "verilog")

#: Widest row one Verilog bank instance holds.
MAX_INSTANCE_WIDTH = 8192


def WritePort(addr_bits, width, lanes):
    """A write port, from its user's side: ``en`` has one bit per lane of ``width // lanes``."""
    return wiring.Signature({"addr": Out(addr_bits), "data": Out(width), "en": Out(lanes)})


def ReadPort(addr_bits, width):
    """A read port, from its user's side: ``data`` is valid the cycle after ``en``."""
    return wiring.Signature({"addr": Out(addr_bits), "en": Out(1), "data": In(width)})


class SRAM(wiring.Component):
    """``depth`` rows of ``width`` bits.

    Members
    -------
    w : In(WritePort).array(2)
    r : In(ReadPort).array(2)
        A read returns the row as it was before a write in the same cycle.
    """

    def __init__(self, *, width, depth, lanes=1, backend="amaranth"):
        if width % lanes:
            raise ValueError(f"width {width} is not a multiple of lanes {lanes}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        self._width, self._depth, self._lanes, self._backend = width, depth, lanes, backend
        self._addr_bits = max(1, (depth - 1).bit_length())
        super().__init__({
            "w": In(WritePort(self._addr_bits, width, lanes)).array(2),
            "r": In(ReadPort(self._addr_bits, width)).array(2),
        })

    @property
    def addr_bits(self):
        return self._addr_bits

    def elaborate(self, platform):
        m = Module()
        if self._backend == "verilog":
            # Amaranth caps the outputs of one instance at 65535 bits, so a wide row is split
            # into lane groups, each its own dypipe_sram.
            groups = -(-self._width // MAX_INSTANCE_WIDTH)
            while self._lanes % groups:
                groups += 1
            lanes = self._lanes // groups
            bits = self._width // groups
            for g in range(groups):
                part = slice(g * bits, (g + 1) * bits)
                m.submodules[f"bank{g}"] = Instance(
                    "dypipe_sram",
                    p_WIDTH=bits, p_DEPTH=self._depth, p_ADDR_BITS=self._addr_bits,
                    p_LANES=lanes,
                    i_clk=ClockSignal(),
                    **{f"i_w{i}_addr": self.w[i].addr for i in range(2)},
                    **{f"i_w{i}_data": self.w[i].data[part] for i in range(2)},
                    **{f"i_w{i}_en": self.w[i].en[g * lanes:(g + 1) * lanes] for i in range(2)},
                    **{f"i_r{i}_{name}": getattr(self.r[i], name)
                       for i in range(2) for name in ("en", "addr")},
                    **{f"o_r{i}_data": self.r[i].data[part] for i in range(2)},
                )
            return m
        m.submodules.mem = mem = Memory(shape=unsigned(self._width), depth=self._depth, init=[])
        for w in self.w:
            port = mem.write_port(
                granularity=self._width // self._lanes if self._lanes > 1 else None)
            m.d.comb += [port.addr.eq(w.addr), port.data.eq(w.data), port.en.eq(w.en)]
        for r in self.r:
            port = mem.read_port()
            m.d.comb += [port.addr.eq(r.addr), port.en.eq(r.en), r.data.eq(port.data)]
        return m
