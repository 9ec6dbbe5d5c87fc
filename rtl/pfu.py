"""The PFU: an R x C multiply-accumulate array with adder trees and an activation stage
(:class:`ConvEngine`), beside the vector unit (:mod:`.vector_unit`) for pooling, elementwise
operations and standalone activations.

:attr:`Op.CONV` runs a loop nest over output pixels (``y_count`` x ``x_count``), output blocks
of R neurons (``m_blocks``), kernel rows (``kh``) and input chunks of C (``k_chunks``); the
formula is at :data:`dypipe.sw.isa.CONV_PARAMS`. :attr:`Op.MVM` is its one-pixel case. One SB
row (an R x C weight block, lane ``r * C + c``) and one chunk of C consecutive NBin elements,
starting at any lane (NBin returns two rows a cycle; a shifter picks the chunk), are read
every cycle, so the array does R x C MACs a cycle; the pipeline is fed across block and pixel
boundaries and drains once per instruction. Write-back rounds to nearest, saturates to 16 bits
and applies the activation. With the ``acc_out`` flag an instruction keeps its accumulators
instead of writing back, and the next one with ``acc_in`` starts from them: one dot product
split over several instructions, exact.
"""

from amaranth import Module, Signal, Cat, Mux, signed
from amaranth.hdl import Instance, ClockSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import ELEM_BITS, WORD_BITS
from ..sw.isa import Err, Op, MVM_PARAMS, CONV_PARAMS, MvmFlags
from .backends import check_backend, ecp5_product
from .lanes import LaneFinish
from .sram import ReadPort, RowWritePort
from .unit_port import (UnitPort, capped_product, check_sum, check_terms, command_fsm,
                        params_too_big, taken_extents, latched)
from .vector_unit import VectorUnit

__all__ = ["PFU", "ConvEngine", "MacArray", "tree_sum"]


def tree_sum(values):
    """A balanced adder tree."""
    values = list(values)
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


class MacArray(wiring.Component):
    """R dot products of C signed 16-bit pairs in two registered stages, as DianNao's NFU-1
    and NFU-2: on a cycle with ``en`` the R x C products ``w[r*C + c] * x[c]`` enter their
    registers, and on the next cycle ``sums[r]`` becomes their adder tree's sum over c. So
    ``sums`` holds the dot products of the operands given two edges before, and the
    multipliers' cycle and the adder trees' are separate (on an FPGA the multipliers are DSP
    blocks in a few rows of the die, far from both the operands and the adders).

    ``backend="verilog"`` instantiates ``rtl/verilog/dypipe_mac_array.v``, which computes
    nothing while it idles (Verilator then skips the array); ``"amaranth"`` builds the same
    array for Amaranth's simulator and for synthesis; ``"ecp5"`` takes each product and its
    register from one ECP5 ``MULT18X18D`` block (:func:`ecp5_product`), so the register costs
    no flip-flop and no wire of the fabric.
    """

    def __init__(self, rows, cols, *, backend="amaranth"):
        self._rows, self._cols, self._backend = rows, cols, check_backend(backend)
        self.sum_bits = 2 * ELEM_BITS + cols.bit_length()
        super().__init__({
            "en": In(1), "x": In(cols * ELEM_BITS), "w": In(rows * cols * ELEM_BITS),
            "sums": Out(rows * self.sum_bits),
        })

    @property
    def params(self):
        """The constructor's arguments but ``backend``."""
        return {"rows": self._rows, "cols": self._cols}

    def elaborate(self, platform):
        m = Module()
        R, C = self._rows, self._cols
        if self._backend == "verilog":
            m.submodules.array = Instance(
                "dypipe_mac_array", p_R=R, p_C=C, p_ELEM_BITS=ELEM_BITS, p_SUM_BITS=self.sum_bits,
                i_clk=ClockSignal(), i_en=self.en, i_x=self.x, i_w=self.w, o_sums=self.sums)
            return m
        x = [self.x.word_select(c, ELEM_BITS).as_signed() for c in range(C)]
        w = [self.w.word_select(i, ELEM_BITS).as_signed() for i in range(R * C)]
        products = [[Signal(signed(2 * ELEM_BITS), name=f"p{r}_{c}") for c in range(C)]
                    for r in range(R)]
        summing = Signal()                  # the products of the last cycle with en
        m.d.sync += summing.eq(self.en)
        if self._backend == "ecp5":
            for r in range(R):
                for c in range(C):
                    ecp5_product(m, f"mul{r}_{c}", w[r * C + c], x[c], products[r][c],
                                 self.en)
        else:
            with m.If(self.en):
                m.d.sync += [products[r][c].eq(w[r * C + c] * x[c])
                             for r in range(R) for c in range(C)]
        with m.If(summing):
            m.d.sync += [self.sums.word_select(r, self.sum_bits).eq(tree_sum(products[r]))
                         for r in range(R)]
        return m


def _rows_bits(rows):
    return max(1, (rows - 1).bit_length())


class ConvEngine(wiring.Component):
    """:attr:`Op.CONV` and :attr:`Op.MVM` on the MAC array.

    Members
    -------
    cmd : In(UnitPort)
    nbin_r, sb_r, nbout_r : Out(ReadPort)
    nbout_w : Out(RowWritePort)
    busy : Out(1)
    mac_cycles : Out(1)    the array did R x C MACs this cycle
    """

    def __init__(self, config, *, backend="amaranth"):
        self._config, self._backend = config, backend
        self._bits = {"nbin": _rows_bits(config.nbin_rows), "sb": _rows_bits(config.sb_rows),
                      "nbout": _rows_bits(config.nbout_rows)}
        elems = {"nbin": config.nbin_row_elems, "sb": config.sb_row_elems,
                 "nbout": config.nbout_row_elems}
        ports = {f"{name}_r": Out(ReadPort(self._bits[name], elems[name] * ELEM_BITS
                                           * (2 if name == "nbin" else 1)))
                 for name in elems}
        super().__init__({
            "cmd": In(UnitPort()), **ports,
            "nbout_w": Out(RowWritePort(self._bits["nbout"], elems["nbout"] * ELEM_BITS)),
            "busy": Out(1), "mac_cycles": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        R, C = cfg.pe_rows, cfg.pe_cols
        lc = (C - 1).bit_length()

        # -- command: MVM is CONV with one pixel, one kernel row and bias = dst --------------
        par = {name: Signal(WORD_BITS, name=name) for name in CONV_PARAMS}
        flags = Signal(MvmFlags)
        cmd = self.cmd.macro.payload
        imm = Signal.like(cmd.imm)      # checked whole: the payload moves on after the handshake
        mvm = {name: cmd.params[i] for i, name in enumerate(MVM_PARAMS)}
        mvm.update(bias=mvm["dst"], kh=1, x_count=1, y_count=1,
                   src=mvm["src"] << lc)            # MVM counts NBin rows, CONV elements
        new = {name: Mux(cmd.op == Op.CONV, cmd.params[i], mvm.get(name, 0))
               for i, name in enumerate(CONV_PARAMS)}
        # The command's registers follow the payload while the unit is ready (unit_port.latched)
        ready = self.cmd.macro.ready
        with m.If(ready):
            m.d.sync += [flags.eq(cmd.imm), imm.eq(cmd.imm)]
            m.d.sync += [par[name].eq(new[name]) for name in CONV_PARAMS]
        p = par
        err_code = Signal(Err)
        err_addr = Signal(WORD_BITS)
        b_in, b_w, b_out = ((cfg.nbin_rows * C).bit_length(), cfg.sb_rows.bit_length(),
                            cfg.nbout_rows.bit_length())
        prod = taken_extents(m, ready, new, (
            ("y_count", "y_stride", b_in), ("x_count", "x_stride", b_in),
            ("kh", "kh_stride", b_in), ("y_count", "dst_y_stride", b_out),
            ("x_count", "dst_x_stride", b_out)))
        blocks_kh = latched(m, ready, capped_product(new["m_blocks"], new["kh"], b_w),
                               "m_blocks_x_kh")
        q = check_terms(par)
        last_in = check_sum(m, "last_in", q["src"], prod["y_count*y_stride"],
                            prod["x_count*x_stride"], prod["kh*kh_stride"],
                            (q["k_chunks"] << lc) - 1)
        last_w = check_sum(m, "last_w", q["weights"],
                           capped_product(blocks_kh, q["k_chunks"], b_w) - 1)
        last_out = check_sum(m, "last_out", q["dst"], prod["y_count*dst_y_stride"],
                             prod["x_count*dst_x_stride"], q["m_blocks"] - 1)
        last_bias = check_sum(m, "last_bias", q["bias"], q["m_blocks"] - 1)
        zero = [p[n] == 0 for n in ("k_chunks", "m_blocks", "kh", "x_count", "y_count")]
        many = (p["m_blocks"] != 1) | (p["x_count"] != 1) | (p["y_count"] != 1)
        with m.If(Cat(*zero).any() | params_too_big(par.values())
                  | ((flags.acc_in | flags.acc_out) & many)
                  | (imm >> len(flags.as_value()) != 0)):
            m.d.comb += err_code.eq(Err.BAD_PARAM)
        for last, rows in ((last_in, cfg.nbin_rows * C), (last_w, cfg.sb_rows),
                           (last_out, cfg.nbout_rows)):
            with m.Elif(last >= rows):
                m.d.comb += [err_code.eq(Err.BUF_RANGE), err_addr.eq(last)]
        with m.Elif(flags.bias & (last_bias >= cfg.nbout_rows)):
            m.d.comb += [err_code.eq(Err.BUF_RANGE), err_addr.eq(last_bias)]

        # -- stage 0: issue operand reads ----------------------------------------------------
        kk, h, blk, x, y = (Signal(WORD_BITS, name=n) for n in ("kk", "h", "blk", "x", "y"))
        line, pix, row, w_ptr = (Signal(WORD_BITS, name=n)
                                 for n in ("line", "pix", "row", "w_ptr"))
        out_line, out_pix = Signal(WORD_BITS), Signal(WORD_BITS)
        issuing = Signal()
        last_k, last_h = kk == p["k_chunks"] - 1, h == p["kh"] - 1
        last_b, last_x, last_y = (blk == p["m_blocks"] - 1, x == p["x_count"] - 1,
                                  y == p["y_count"] - 1)
        first = (kk == 0) & (h == 0)
        last = last_k & last_h
        final = last & last_b & last_x & last_y
        # NBin is addressed in elements: the chunk is C elements from ``row + kk * C``, which
        # may start at any lane; the buffer returns its row and the next.
        elem = Signal(WORD_BITS, name="elem")
        m.d.comb += [
            elem.eq(row + (kk << lc)),
            self.nbin_r.addr.eq(elem >> lc), self.nbin_r.en.eq(issuing),
            self.sb_r.addr.eq(w_ptr), self.sb_r.en.eq(issuing),
            self.nbout_r.addr.eq(p["bias"] + blk),
            self.nbout_r.en.eq(issuing & first & flags.bias & ~flags.acc_in),
        ]
        with m.If(issuing):
            m.d.sync += [kk.eq(kk + 1), w_ptr.eq(w_ptr + 1)]
            with m.If(last_k):
                m.d.sync += [kk.eq(0), h.eq(h + 1), row.eq(row + p["kh_stride"])]
                with m.If(last_h):
                    m.d.sync += [h.eq(0), row.eq(pix), blk.eq(blk + 1)]
                    with m.If(last_b):
                        m.d.sync += [blk.eq(0), w_ptr.eq(p["weights"]), x.eq(x + 1),
                                     pix.eq(pix + p["x_stride"]), row.eq(pix + p["x_stride"]),
                                     out_pix.eq(out_pix + p["dst_x_stride"])]
                        with m.If(last_x):
                            m.d.sync += [
                                x.eq(0), y.eq(y + 1), line.eq(line + p["y_stride"]),
                                pix.eq(line + p["y_stride"]), row.eq(line + p["y_stride"]),
                                out_line.eq(out_line + p["dst_y_stride"]),
                                out_pix.eq(out_line + p["dst_y_stride"])]
                            with m.If(last_y):
                                m.d.sync += issuing.eq(0)

        # -- stage 1: operands arrive, into registers (a block RAM's output comes late in the
        # cycle, so the array does not start from it) ----------------------------------------
        s1 = {n: Signal(name=f"s1_{n}") for n in ("valid", "first", "last", "final")}
        s1_row = Signal(self._bits["nbout"])
        s1_lane = Signal(max(1, lc), name="s1_lane")
        m.d.sync += [s1["valid"].eq(issuing), s1["first"].eq(first), s1["last"].eq(last),
                     s1["final"].eq(final), s1_row.eq(out_pix + blk),
                     s1_lane.eq(elem[:lc] if lc else 0)]
        ops = {n: Signal(name=f"ops_{n}") for n in s1}
        ops_row = Signal.like(s1_row)
        ops_x, ops_w = Signal(C * ELEM_BITS), Signal(R * C * ELEM_BITS)
        ops_bias = Signal(R * ELEM_BITS)
        m.d.sync += [ops[n].eq(s1[n]) for n in ops] + [ops_row.eq(s1_row)]
        with m.If(s1["valid"]):
            m.d.sync += [
                ops_x.eq(self.nbin_r.data.bit_select(s1_lane * ELEM_BITS, C * ELEM_BITS)),
                ops_w.eq(self.sb_r.data), ops_bias.eq(Mux(flags.bias, self.nbout_r.data, 0))]

        # -- stages 2 and 3: R x C products, then R adder trees (MacArray) ------------------
        m.submodules.array = array = MacArray(R, C, backend=self._backend)
        m.d.comb += [array.en.eq(ops["valid"]), array.x.eq(ops_x), array.w.eq(ops_w)]
        m.d.comb += self.mac_cycles.eq(ops["valid"])
        mul = {n: Signal(name=f"mul_{n}") for n in ("valid", "first", "last", "final")}
        mul_row = Signal.like(s1_row)
        mul_bias = Signal(R * ELEM_BITS)
        m.d.sync += [mul[n].eq(ops[n]) for n in mul] + [mul_row.eq(ops_row)]
        with m.If(ops["valid"]):
            m.d.sync += mul_bias.eq(ops_bias)

        # -- stage 4: accumulate -------------------------------------------------------------
        s2 = {n: Signal(name=f"s2_{n}") for n in mul}
        s2_row = Signal.like(s1_row)
        s2_sum = [array.sums.word_select(r, array.sum_bits).as_signed() for r in range(R)]
        s2_bias = Signal(R * ELEM_BITS)
        m.d.sync += [s2[n].eq(mul[n]) for n in s2] + [s2_row.eq(mul_row)]
        with m.If(mul["valid"]):
            m.d.sync += s2_bias.eq(mul_bias)

        acc = [Signal(signed(cfg.acc_bits), name=f"acc{r}") for r in range(R)]
        s3 = {n: Signal(name=f"s3_{n}") for n in ("valid", "final")}
        s3_row = Signal.like(s1_row)
        with m.If(s2["valid"]):
            for r in range(R):
                bias_r = (s2_bias.word_select(r, ELEM_BITS).as_signed() << cfg.frac_bits)
                init = Mux(flags.acc_in, acc[r], bias_r << flags.wshift)
                m.d.sync += acc[r].eq(Mux(s2["first"], init, acc[r]) + s2_sum[r])
        m.d.sync += [s3["valid"].eq(s2["valid"] & s2["last"]),
                     s3["final"].eq(s2["valid"] & s2["final"]), s3_row.eq(s2_row)]

        # -- stage 5: round, saturate, activate ----------------------------------------------
        s4 = {n: Signal(name=f"s4_{n}") for n in ("valid", "final")}
        s4_row = Signal.like(s1_row)
        s4_data = Signal(R * ELEM_BITS)
        m.d.sync += [s4["valid"].eq(s3["valid"]), s4["final"].eq(s3["final"]),
                     s4_row.eq(s3_row)]
        m.submodules.finish = finish = LaneFinish(R, cfg.acc_bits, cfg.frac_bits, vector=False,
                                                  backend=self._backend)
        m.d.comb += [finish.en.eq(s3["valid"]), finish.act.eq(flags.act),
                     finish.wshift.eq(flags.wshift), finish.inp.eq(Cat(acc)),
                     s4_data.eq(finish.out)]

        # -- stage 6: the results' register (the activation's table and multiplier are behind
        # the lanes' register, and NBout's block RAMs across the die: docs/fpga.md) ---------
        s5 = {n: Signal(name=f"s5_{n}") for n in s4}
        s5_row = Signal.like(s1_row)
        s5_data = Signal.like(s4_data)
        m.d.sync += [s5[n].eq(s4[n]) for n in s4] + [s5_row.eq(s4_row)]
        with m.If(s4["valid"]):
            m.d.sync += s5_data.eq(s4_data)

        # -- stage 7: write back -------------------------------------------------------------
        m.d.comb += [self.nbout_w.addr.eq(s5_row), self.nbout_w.data.eq(s5_data),
                     self.nbout_w.en.eq(s5["valid"] & ~flags.acc_out)]

        command_fsm(m, self.cmd, self.busy, err_code, err_addr, run=issuing,
                    finished=s5["final"], start=[
                        kk.eq(0), h.eq(0), blk.eq(0), x.eq(0), y.eq(0), w_ptr.eq(p["weights"]),
                        line.eq(p["src"]), pix.eq(p["src"]), row.eq(p["src"]),
                        out_line.eq(p["dst"]), out_pix.eq(p["dst"])])
        return m


class PFU(wiring.Component):
    """The conv engine and the vector unit behind one command port; one macro-instruction runs
    at a time.

    Members
    -------
    cmd : In(UnitPort)     :attr:`Op.MVM`, :attr:`Op.CONV`, :attr:`Op.VEC` from the sequencer
    nbin_r, sb_r, nbout_r : Out(ReadPort)
    nbout_w : Out(RowWritePort)    the MAC array's results
    nbin_w : Out(RowWritePort)     the vector unit's results
    busy : Out(1)
    mac_cycles : Out(1)    the array did R x C MACs this cycle
    """

    def __init__(self, config, *, backend="amaranth"):
        self._config, self._backend = config, backend
        self._conv = ConvEngine(config, backend=backend)
        self._vec = VectorUnit(config, backend=backend)
        sig = self._conv.signature.members
        super().__init__({
            "cmd": In(UnitPort()),
            "nbin_r": sig["nbin_r"], "sb_r": sig["sb_r"], "nbout_r": sig["nbout_r"],
            "nbout_w": sig["nbout_w"], "nbin_w": self._vec.signature.members["nbin_w"],
            "busy": Out(1), "mac_cycles": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.conv = conv = self._conv
        m.submodules.vec = vec = self._vec
        is_vec = self.cmd.macro.payload.op == Op.VEC
        idle = ~conv.busy & ~vec.busy
        for engine, mine in ((conv, ~is_vec), (vec, is_vec)):
            m.d.comb += [engine.cmd.macro.payload.eq(self.cmd.macro.payload),
                         engine.cmd.macro.valid.eq(self.cmd.macro.valid & mine & idle)]
        m.d.comb += [
            self.cmd.macro.ready.eq(idle & Mux(is_vec, vec.cmd.macro.ready,
                                                conv.cmd.macro.ready)),
            self.cmd.done.eq(conv.cmd.done | vec.cmd.done),
            self.cmd.err.eq(conv.cmd.err | vec.cmd.err),
            self.cmd.err_code.eq(Mux(vec.cmd.err, vec.cmd.err_code, conv.cmd.err_code)),
            self.cmd.err_addr.eq(Mux(vec.cmd.err, vec.cmd.err_addr, conv.cmd.err_addr)),
            self.busy.eq(conv.busy | vec.busy),
            self.mac_cycles.eq(conv.mac_cycles),
        ]
        # NBin reads: whichever engine runs.
        m.d.comb += [
            self.nbin_r.addr.eq(Mux(vec.busy, vec.nbin_r.addr, conv.nbin_r.addr)),
            self.nbin_r.en.eq(conv.nbin_r.en | vec.nbin_r.en),
            conv.nbin_r.data.eq(self.nbin_r.data),
            vec.nbin_r.data.eq(self.nbin_r.data[:len(vec.nbin_r.data)]),
        ]
        wiring.connect(m, conv.sb_r, wiring.flipped(self.sb_r))
        wiring.connect(m, conv.nbout_r, wiring.flipped(self.nbout_r))
        wiring.connect(m, conv.nbout_w, wiring.flipped(self.nbout_w))
        wiring.connect(m, vec.nbin_w, wiring.flipped(self.nbin_w))
        return m
