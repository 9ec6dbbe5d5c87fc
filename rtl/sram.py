"""A bank of on-chip SRAM: a one-lane write port, a whole-row write port, two read ports."""

from amaranth import Module, Mux, Signal, Cat, Const, unsigned
from amaranth.hdl import Instance, ClockSignal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .backends import check_backend

__all__ = ["SRAM", "LaneWritePort", "RowWritePort", "ReadPort"]

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

    With ``row_write=False`` the bank has no row write port (SB: only the load DMA writes it).

    Members
    -------
    w_lane : In(LaneWritePort)
    w_row : In(RowWritePort)       only with ``row_write``
    r : In(ReadPort).array(2)
        ``data`` is the row ``addr`` named in the cycle of ``en``, as it was before that
        cycle's writes, and holds while ``en`` is low. When both write ports write one lane
        of one row in the same cycle, the lane port's data is kept (as in the twin,
        ``rtl/verilog/dypipe_sram.v``); the row port's other lanes are written.

    The ``"amaranth"`` backend is a live-value table (LVT) memory, so that every memory in it
    has one write port and maps to FPGA block RAM: one ``Memory`` per write port (the lane
    copy and the row copy), each read by both read ports, and a table of one bit per row and
    lane saying which copy holds that lane's live value (the row copy when the row port wrote
    it last), itself the XOR of two one-write-port memories for an FPGA's LUT RAM. A read
    takes the table's entry with the row, so it picks each lane's copy in the cycle of the
    read. Without ``row_write`` it is the lane copy alone. The table and each read port's copy
    of its entry ignore the domain's reset, as the rows do, so a reset changes no row; it
    clears the read ports' ``data`` (Amaranth's memory read ports reset, as with one memory;
    the twin's do not, and ``dypipe equiv`` does not cover reset).
    """

    def __init__(self, *, width, depth, lanes=1, row_write=True, backend="amaranth"):
        if width % lanes or lanes & (lanes - 1):
            raise ValueError(f"lanes must be a power of two dividing width {width}, "
                             f"not {lanes}")
        self._width, self._depth, self._lanes = width, depth, lanes
        self._backend = check_backend(backend)
        self._row_write = bool(row_write)
        self._addr_bits = max(1, (depth - 1).bit_length())
        self._lane_bits = (lanes - 1).bit_length()
        members = {
            "w_lane": In(LaneWritePort(self._addr_bits, self._lane_bits, width // lanes)),
            "r": In(ReadPort(self._addr_bits, width)).array(2),
        }
        if self._row_write:
            members["w_row"] = In(RowWritePort(self._addr_bits, width))
        super().__init__(members)

    @property
    def addr_bits(self):
        return self._addr_bits

    @property
    def row_write(self):
        return self._row_write

    @property
    def params(self):
        """The constructor's arguments but ``backend``: ``SRAM(**params, backend=...)`` builds
        this bank with either backend (the equivalence check builds both)."""
        return {"width": self._width, "depth": self._depth, "lanes": self._lanes,
                "row_write": self._row_write}

    def elaborate(self, platform):
        m = Module()
        if self._backend == "verilog":
            self._elaborate_verilog(m)
        else:
            self._elaborate_amaranth(m)
        return m

    def _elaborate_verilog(self, m):
        # A wide row is split into lane groups, each its own dypipe_sram.
        groups = min(self._lanes, -(-self._width // MAX_INSTANCE_WIDTH))
        lanes = self._lanes // groups
        bits = self._width // groups
        inner = (lanes - 1).bit_length()
        row = self.w_row if self._row_write else None
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
                i_row_en=row.en if row else 0, i_row_addr=row.addr if row else 0,
                i_row_data=row.data[part] if row else 0,
                **{f"i_r{i}_{name}": getattr(self.r[i], name)
                   for i in range(2) for name in ("en", "addr")},
                **{f"o_r{i}_data": self.r[i].data[part] for i in range(2)},
            )

    def _read_ports(self, m, mem):
        """A read port of ``mem`` for each of the bank's, addressed and enabled by it."""
        ports = [mem.read_port() for _ in self.r]
        for r, port in zip(self.r, ports):
            m.d.comb += [port.addr.eq(r.addr), port.en.eq(r.en)]
        return ports

    def _elaborate_amaranth(self, m):
        lanes, lane_width = self._lanes, self._width // self._lanes
        # The lane copy: every lane write. The table starts naming it for every lane, so every
        # row starts at zero (init=[] on both copies).
        m.submodules.lane_mem = lane_mem = Memory(shape=unsigned(self._width),
                                                  depth=self._depth, init=[])
        # The lane port's lane, one-hot.
        lane_bit = Signal(lanes, name="lane_bit")
        m.d.comb += lane_bit.eq(Const(1, 1) << self.w_lane.lane[:self._lane_bits]
                                if lanes > 1 else 1)
        lane_w = lane_mem.write_port(granularity=lane_width if lanes > 1 else None)
        m.d.comb += [
            lane_w.addr.eq(self.w_lane.addr),
            lane_w.data.eq(self.w_lane.data.replicate(lanes)),
            lane_w.en.eq(Mux(self.w_lane.en, lane_bit, 0)),
        ]
        lane_r = self._read_ports(m, lane_mem)
        if not self._row_write:
            for r, port in zip(self.r, lane_r):
                m.d.comb += r.data.eq(port.data)
            return

        # The row copy: every row write.
        m.submodules.row_mem = row_mem = Memory(shape=unsigned(self._width),
                                                depth=self._depth, init=[])
        row_w = row_mem.write_port()
        m.d.comb += [row_w.addr.eq(self.w_row.addr), row_w.data.eq(self.w_row.data),
                     row_w.en.eq(self.w_row.en)]
        row_r = self._read_ports(m, row_mem)

        # The live-value table: bit l of entry a is 1 when the row copy holds lane l of row a.
        # It is two memories of one write port each, so that an FPGA keeps it in LUT RAM
        # (as flip-flops it took about 1,700 LUT4 a bank on `small`: a decoder and a
        # multiplexer per bit): the entry is ``table_a[a] ^ table_b[a]``. The row port
        # writes ``table_a`` (its row's entry to all ones), the lane port ``table_b`` (its
        # lane's bit to zero), each reading the other memory to set its own word; when both
        # write one row in the same cycle, the row port's word also leaves the lane port's
        # bit at zero, so the lane port wins.
        mems = {}
        for name in ("table_a", "table_b"):
            mems[name] = mem = Memory(shape=unsigned(lanes), depth=self._depth, init=[],
                                      attrs={"ram_style": "distributed"})
            m.submodules[name] = mem

        def read(name, addr):
            port = mems[name].read_port(domain="comb")
            m.d.comb += port.addr.eq(addr)
            return port.data

        b_word = Signal(lanes, name="b_word")       # table_b's word after the lane write
        m.d.comb += b_word.eq((read("table_b", self.w_lane.addr) & ~lane_bit)
                              | (read("table_a", self.w_lane.addr) & lane_bit))
        b_w = mems["table_b"].write_port()
        m.d.comb += [b_w.addr.eq(self.w_lane.addr), b_w.data.eq(b_word),
                     b_w.en.eq(self.w_lane.en)]
        collide = self.w_lane.en & (self.w_lane.addr == self.w_row.addr)
        a_w = mems["table_a"].write_port()
        m.d.comb += [a_w.addr.eq(self.w_row.addr), a_w.en.eq(self.w_row.en),
                     a_w.data.eq(Mux(collide, ~b_word ^ lane_bit,
                                     ~read("table_b", self.w_row.addr)))]
        live = [read("table_a", r.addr) ^ read("table_b", r.addr) for r in self.r]
        for i, (r, lane_port, row_port) in enumerate(zip(self.r, lane_r, row_r)):
            sel = Signal(lanes, name=f"r{i}_live", reset_less=True)
            with m.If(r.en):
                m.d.sync += sel.eq(live[i])
            m.d.comb += r.data.eq(Cat(
                Mux(sel[l], row_port.data.word_select(l, lane_width),
                    lane_port.data.word_select(l, lane_width)) for l in range(lanes)))
