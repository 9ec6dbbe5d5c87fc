"""The PFU's vector unit: pooling (max, average), elementwise add and multiply, and standalone
activations, C lanes wide, on NBin rows.

:attr:`Op.VEC` runs a loop nest over output pixels (``y_count`` x ``x_count``), chunks of C
channels and a window of ``kh`` x ``kw`` rows (the formula is at
:data:`dypipe.sw.isa.VEC_PARAMS`). One NBin row is read per cycle; a result row is written
back into NBin (the store DMA takes it from there) once its window has been read, so a k x k
pool costs k*k cycles per row and an elementwise op two (a, then b).
"""

from amaranth import Module, Signal, Cat, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import ELEM_BITS, WORD_BITS
from ..sw.isa import Err, VecFn, VecFlags, VEC_PARAMS
from .lanes import LaneFold, LaneFinish, FOLD_BITS, SCALE_BITS, SCALED_BITS
from .sram import ReadPort, RowWritePort
from .unit_port import (UnitPort, capped_product, check_sum, check_terms, command_fsm,
                        params_too_big, taken_extents, latched)

__all__ = ["VectorUnit", "MAX_WINDOW"]

#: Most rows one window may have (its sum fits the FOLD_BITS lane accumulators).
MAX_WINDOW = 1 << 16


class VectorUnit(wiring.Component):
    """Members
    -------
    cmd : In(UnitPort)     :attr:`Op.VEC`
    nbin_r : Out(ReadPort)
    nbin_w : Out(RowWritePort)
    busy : Out(1)
    """

    def __init__(self, config, *, backend="amaranth"):
        self._config, self._backend = config, backend
        bits = max(1, (config.nbin_rows - 1).bit_length())
        width = config.nbin_row_elems * ELEM_BITS
        super().__init__({
            "cmd": In(UnitPort()),
            "nbin_r": Out(ReadPort(bits, width)),
            "nbin_w": Out(RowWritePort(bits, width)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        lanes = cfg.nbin_row_elems
        frac = cfg.frac_bits

        # -- command, check: ADD and MUL are a window of two rows, a then b ------------------
        p = {name: Signal(WORD_BITS, name=name) for name in VEC_PARAMS}
        flags = Signal(VecFlags)
        cmd = self.cmd.macro.payload
        binary = (flags.fn == VecFn.ADD) | (flags.fn == VecFn.MUL)
        imm = Signal.like(cmd.imm)      # checked whole: the payload moves on after the handshake
        # The command's registers follow the payload while the unit is ready (unit_port.latched)
        ready = self.cmd.macro.ready
        with m.If(ready):
            m.d.sync += [p[name].eq(cmd.params[i]) for i, name in enumerate(VEC_PARAMS)]
            m.d.sync += [flags.eq(cmd.imm), imm.eq(cmd.imm)]
        kh = Mux(binary, 1, p["kh"])
        kw = Mux(binary, 2, p["kw"])
        kw_stride = Mux(binary, p["src_b"] - p["src"], p["kw_stride"])[:WORD_BITS]

        err_code = Signal(Err)
        err_addr = Signal(WORD_BITS)
        rows = cfg.nbin_rows
        bits = rows.bit_length()
        new = {name: cmd.params[i] for i, name in enumerate(VEC_PARAMS)}
        prod = taken_extents(m, ready, new, [
            (a, b, bits) for a, b in (("y_count", "y_stride"), ("x_count", "x_stride"),
                                      ("kh", "kh_stride"), ("kw", "kw_stride"),
                                      ("y_count", "dst_y_stride"), ("x_count", "dst_x_stride"))],
            prefix="vec_")
        window = latched(m, ready, capped_product(new["kh"], new["kw"],
                                                    MAX_WINDOW.bit_length()), "vec_window")
        q = check_terms(p)
        base = (prod["y_count*y_stride"], prod["x_count*x_stride"], q["chunks"] - 1)
        a_last = check_sum(m, "vec_last_a", q["src"], *base)
        win_last = check_sum(m, "vec_last_win", q["src"], *base, prod["kh*kh_stride"],
                             prod["kw*kw_stride"])
        b_last = check_sum(m, "vec_last_b", q["src_b"], *base)
        out_last = check_sum(m, "vec_last_out", q["dst"], prod["y_count*dst_y_stride"],
                             prod["x_count*dst_x_stride"], q["chunks"] - 1)
        zero = [p[n] == 0 for n in ("chunks", "x_count", "y_count")]
        with m.If(Cat(*zero).any() | params_too_big(p.values())
                  | (flags.fn.as_value() >= len(VecFn))
                  | (~binary & ((p["kh"] == 0) | (p["kw"] == 0) | (window > MAX_WINDOW)))
                  | (imm >> len(flags.as_value()) != 0)):
            m.d.comb += err_code.eq(Err.BAD_PARAM)
        with m.Elif(binary & (a_last >= rows)):
            m.d.comb += [err_code.eq(Err.BUF_RANGE), err_addr.eq(a_last)]
        with m.Elif(binary & (b_last >= rows)):
            m.d.comb += [err_code.eq(Err.BUF_RANGE), err_addr.eq(b_last)]
        with m.Elif(~binary & (win_last >= rows)):
            m.d.comb += [err_code.eq(Err.BUF_RANGE), err_addr.eq(win_last)]
        with m.Elif(out_last >= rows):
            m.d.comb += [err_code.eq(Err.BUF_RANGE), err_addr.eq(out_last)]

        # -- stage 0: issue reads ------------------------------------------------------------
        c, i, j, x, y = (Signal(WORD_BITS, name=f"vec_{n}") for n in "cijxy")
        line, pix, chunk, row, addr = (Signal(WORD_BITS, name=f"vec_{n}")
                                       for n in ("line", "pix", "chunk", "row", "addr"))
        out_line, out_pix = Signal(WORD_BITS), Signal(WORD_BITS)
        issuing = Signal()
        last_j, last_i = j == kw - 1, i == kh - 1
        last_c, last_x, last_y = (c == p["chunks"] - 1, x == p["x_count"] - 1,
                                  y == p["y_count"] - 1)
        first = (i == 0) & (j == 0)
        last = last_i & last_j
        final = last & last_c & last_x & last_y
        m.d.comb += [self.nbin_r.addr.eq(addr), self.nbin_r.en.eq(issuing)]
        with m.If(issuing):
            m.d.sync += [j.eq(j + 1), addr.eq(addr + kw_stride)]
            with m.If(last_j):
                m.d.sync += [j.eq(0), i.eq(i + 1), row.eq(row + p["kh_stride"]),
                             addr.eq(row + p["kh_stride"])]
                with m.If(last_i):
                    m.d.sync += [i.eq(0), c.eq(c + 1), chunk.eq(chunk + 1),
                                 row.eq(chunk + 1), addr.eq(chunk + 1)]
                    with m.If(last_c):
                        nxt = pix + p["x_stride"]
                        m.d.sync += [c.eq(0), x.eq(x + 1), pix.eq(nxt), chunk.eq(nxt),
                                     row.eq(nxt), addr.eq(nxt),
                                     out_pix.eq(out_pix + p["dst_x_stride"])]
                        with m.If(last_x):
                            nxt = line + p["y_stride"]
                            m.d.sync += [x.eq(0), y.eq(y + 1), line.eq(nxt), pix.eq(nxt),
                                         chunk.eq(nxt), row.eq(nxt), addr.eq(nxt),
                                         out_line.eq(out_line + p["dst_y_stride"]),
                                         out_pix.eq(out_line + p["dst_y_stride"])]
                            with m.If(last_y):
                                m.d.sync += issuing.eq(0)

        # -- stage 1: the row arrives --------------------------------------------------------
        s1 = {n: Signal(name=f"vec_s1_{n}") for n in ("valid", "first", "last", "final")}
        s1_row = Signal(len(self.nbin_w.addr))
        m.d.sync += [s1["valid"].eq(issuing), s1["first"].eq(first), s1["last"].eq(last),
                     s1["final"].eq(final), s1_row.eq(out_pix + c)]

        # -- stage 2: the row's register (a block RAM's data comes late in its cycle, and the
        # fold's multipliers are DSP blocks elsewhere on the die: docs/fpga.md) -------------
        rd = {n: Signal(name=f"vec_rd_{n}") for n in s1}
        rd_row = Signal.like(s1_row)
        rd_data = Signal.like(self.nbin_r.data)
        m.d.sync += [rd[n].eq(s1[n]) for n in s1] + [rd_row.eq(s1_row)]
        with m.If(s1["valid"]):
            m.d.sync += rd_data.eq(self.nbin_r.data)

        # -- stage 3: fold the row into the lane accumulators --------------------------------
        s2 = {n: Signal(name=f"vec_s2_{n}") for n in ("valid", "final")}
        s2_row = Signal.like(s1_row)
        m.d.sync += [s2["valid"].eq(rd["valid"] & rd["last"]),
                     s2["final"].eq(rd["valid"] & rd["final"]), s2_row.eq(rd_row)]
        m.submodules.fold = fold = LaneFold(lanes, backend=self._backend)
        m.d.comb += [fold.en.eq(rd["valid"]), fold.first.eq(rd["first"]), fold.fn.eq(flags.fn),
                     fold.d.eq(rd_data)]

        # -- stage 4: AVG's product (in the finish's cycle, it was the PFU's longest path) ---
        s3 = {n: Signal(name=f"vec_s3_{n}") for n in ("valid", "final")}
        s3_row = Signal.like(s1_row)
        m.d.sync += [s3["valid"].eq(s2["valid"]), s3["final"].eq(s2["final"]),
                     s3_row.eq(s2_row)]
        scaled = Signal(lanes * SCALED_BITS)
        # The factor, from a register: AVG's scale, 1 for the others (their lanes pass as they
        # are). The command's flags and scale are latched three cycles at least before its
        # first row reaches this stage, so the copy a cycle behind them is in time; a choice
        # between the product and the lane would put a LUT on each side of the multiplier.
        factor = Signal(SCALE_BITS)
        m.d.sync += factor.eq(Mux(flags.fn == VecFn.AVG, p["scale"][:SCALE_BITS], 1))
        with m.If(s2["valid"]):
            for k in range(lanes):
                a = fold.acc.word_select(k, FOLD_BITS).as_signed()
                m.d.sync += scaled.word_select(k, SCALED_BITS).eq(a * factor)

        # -- stage 5: finish, saturate, activate ---------------------------------------------
        s4 = {n: Signal(name=f"vec_s4_{n}") for n in ("valid", "final")}
        s4_row = Signal.like(s1_row)
        m.d.sync += [s4["valid"].eq(s3["valid"]), s4["final"].eq(s3["final"]),
                     s4_row.eq(s3_row)]
        m.submodules.finish = finish = LaneFinish(lanes, SCALED_BITS, frac, vector=True,
                                                  backend=self._backend)
        m.d.comb += [finish.en.eq(s3["valid"]), finish.fn.eq(flags.fn), finish.act.eq(flags.act),
                     finish.inp.eq(scaled)]

        # -- stage 6: the results' register (the activation's multiplier blocks and NBin's
        # block RAMs lie apart on the die: docs/fpga.md) -----------------------------------
        s5 = {n: Signal(name=f"vec_s5_{n}") for n in ("valid", "final")}
        s5_row = Signal.like(s1_row)
        s5_data = Signal.like(finish.out)
        m.d.sync += [s5[n].eq(s4[n]) for n in s5] + [s5_row.eq(s4_row)]
        with m.If(s4["valid"]):
            m.d.sync += s5_data.eq(finish.out)

        # -- stage 7: write back -------------------------------------------------------------
        m.d.comb += [self.nbin_w.addr.eq(s5_row), self.nbin_w.data.eq(s5_data),
                     self.nbin_w.en.eq(s5["valid"])]

        command_fsm(m, self.cmd, self.busy, err_code, err_addr, run=issuing,
                    finished=s5["final"], start=[
                        c.eq(0), i.eq(0), j.eq(0), x.eq(0), y.eq(0), line.eq(p["src"]),
                        pix.eq(p["src"]), chunk.eq(p["src"]), row.eq(p["src"]),
                        addr.eq(p["src"]), out_line.eq(p["dst"]), out_pix.eq(p["dst"])])
        return m
