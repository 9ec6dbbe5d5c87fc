"""The PFU: an R x C multiply-accumulate array with adder trees and an activation stage.

:attr:`Op.MVM` computes ``m_blocks`` output blocks of R neurons each. Block ``i`` is::

    acc      = (bias ? NBout[dst + i] << frac_bits : 0)
               + sum_k  SB[weights + i * k_chunks + k] . NBin[src + k]      (k < k_chunks)
    NBout[dst + i] = act(saturate16((acc + 2**(frac_bits - 1)) >> frac_bits))

where an SB row holds an R x C weight block (lane ``r * C + c``) and an NBin row C inputs. One
SB row and one NBin row are read every cycle, so the array does R x C MACs a cycle; the
pipeline is fed across block boundaries and drains once per instruction.
"""

from amaranth import Module, Signal, Cat, Mux, signed
from amaranth.hdl import Instance, ClockSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import ELEM_BITS, WORD_BITS
from ..sw.isa import Act, Err, MVM_PARAMS, MvmFlags
from .sram import ReadPort, RowWritePort
from .unit_port import UnitPort

__all__ = ["PFU", "MacArray", "tree_sum", "write_back"]


def tree_sum(values):
    """A balanced adder tree."""
    values = list(values)
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


def write_back(m, acc, frac_bits, act):
    """Round to nearest (ties up), saturate to 16 bits and apply ``act``; returns a 16-bit value."""
    lo, hi = -(1 << (ELEM_BITS - 1)), (1 << (ELEM_BITS - 1)) - 1
    rounded = Signal(signed(len(acc) + 1))
    sat = Signal(signed(ELEM_BITS))
    m.d.comb += rounded.eq((acc + (1 << (frac_bits - 1))) >> frac_bits)
    m.d.comb += sat.eq(Mux(rounded > hi, hi, Mux(rounded < lo, lo, rounded)))
    return Mux((act == Act.RELU) & (sat < 0), 0, sat)


class MacArray(wiring.Component):
    """R dot products of C signed 16-bit pairs, registered: on a cycle with ``en``, ``sums[r]``
    becomes ``sum_c w[r*C + c] * x[c]``.

    ``backend="verilog"`` instantiates ``rtl/verilog/dypipe_mac_array.v``, which computes
    nothing while ``en`` is low (Verilator then skips the array when it idles);
    ``"amaranth"`` builds the same array from adder trees for Amaranth's simulator.
    """

    def __init__(self, rows, cols, *, backend="amaranth"):
        self._rows, self._cols, self._backend = rows, cols, backend
        self.sum_bits = 2 * ELEM_BITS + cols.bit_length()
        super().__init__({
            "en": In(1), "x": In(cols * ELEM_BITS), "w": In(rows * cols * ELEM_BITS),
            "sums": Out(rows * self.sum_bits),
        })

    def elaborate(self, platform):
        m = Module()
        R, C = self._rows, self._cols
        if self._backend == "verilog":
            m.submodules.array = Instance(
                "dypipe_mac_array", p_R=R, p_C=C, p_SUM_BITS=self.sum_bits,
                i_clk=ClockSignal(), i_en=self.en, i_x=self.x, i_w=self.w, o_sums=self.sums)
            return m
        x = [self.x.word_select(c, ELEM_BITS).as_signed() for c in range(C)]
        with m.If(self.en):
            for r in range(R):
                total = tree_sum(self.w.word_select(r * C + c, ELEM_BITS).as_signed() * x[c]
                                 for c in range(C))
                m.d.sync += self.sums.word_select(r, self.sum_bits).eq(total)
        return m


class PFU(wiring.Component):
    """Members
    -------
    cmd : In(UnitPort)     :attr:`Op.MVM` from the PFU sequencer
    nbin_r, sb_r, nbout_r : Out(ReadPort)
    nbout_w : Out(RowWritePort)
    busy : Out(1)
    mac_cycles : Out(1)    the array did R x C MACs this cycle
    """

    def __init__(self, config, *, backend="amaranth"):
        self._config, self._backend = config, backend
        rows_bits = lambda rows: max(1, (rows - 1).bit_length())
        self._elems = {"nbin": config.nbin_row_elems, "sb": config.sb_row_elems,
                       "nbout": config.nbout_row_elems}
        self._addr_bits = {"nbin": rows_bits(config.nbin_rows), "sb": rows_bits(config.sb_rows),
                           "nbout": rows_bits(config.nbout_rows)}
        ports = {f"{name}_r": Out(ReadPort(self._addr_bits[name], elems * ELEM_BITS))
                 for name, elems in self._elems.items()}
        super().__init__({
            "cmd": In(UnitPort()), **ports,
            "nbout_w": Out(RowWritePort(self._addr_bits["nbout"],
                                        self._elems["nbout"] * ELEM_BITS)),
            "busy": Out(1), "mac_cycles": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        R, C = cfg.pe_rows, cfg.pe_cols

        # -- command, check ------------------------------------------------------------------
        par = {name: Signal(WORD_BITS, name=name) for name in MVM_PARAMS}
        flags = Signal(MvmFlags)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [par[name].eq(self.cmd.payload.params[i])
                         for i, name in enumerate(MVM_PARAMS)]
            m.d.sync += flags.eq(self.cmd.payload.imm)
        dst, src, wts, k, nblk = (par[name] for name in MVM_PARAMS)
        err_code = Signal(Err)
        err_addr = Signal(WORD_BITS)
        last_w = Signal(2 * WORD_BITS + 1)
        m.d.comb += last_w.eq(wts + nblk * k - 1)
        with m.If((k == 0) | (nblk == 0) | (flags.act.as_value() >= len(Act))
                  | (self.cmd.payload.imm >> len(flags.as_value()) != 0)):
            m.d.comb += err_code.eq(Err.BAD_PARAM)
        with m.Elif(src + k > cfg.nbin_rows):
            m.d.comb += [err_code.eq(Err.BUF_RANGE), err_addr.eq(src + k - 1)]
        with m.Elif(last_w >= cfg.sb_rows):
            m.d.comb += [err_code.eq(Err.BUF_RANGE), err_addr.eq(last_w)]
        with m.Elif(dst + nblk > cfg.nbout_rows):
            m.d.comb += [err_code.eq(Err.BUF_RANGE), err_addr.eq(dst + nblk - 1)]

        # -- stage 0: issue operand reads ----------------------------------------------------
        blk = Signal(WORD_BITS)
        kk = Signal(WORD_BITS)
        w_ptr = Signal(WORD_BITS)
        issuing = Signal()
        first, last, final = kk == 0, kk == k - 1, (kk == k - 1) & (blk == nblk - 1)
        m.d.comb += [
            self.nbin_r.addr.eq(src + kk), self.nbin_r.en.eq(issuing),
            self.sb_r.addr.eq(w_ptr), self.sb_r.en.eq(issuing),
            self.nbout_r.addr.eq(dst + blk), self.nbout_r.en.eq(issuing & first & flags.bias),
        ]
        with m.If(issuing):
            m.d.sync += w_ptr.eq(w_ptr + 1)
            with m.If(last):
                m.d.sync += [kk.eq(0), blk.eq(blk + 1)]
                with m.If(final):
                    m.d.sync += issuing.eq(0)
            with m.Else():
                m.d.sync += kk.eq(kk + 1)

        # -- stage 1: operands arrive; R dot products of C ----------------------------------
        s1 = {n: Signal(name=f"s1_{n}") for n in ("valid", "first", "last", "final")}
        s1_row = Signal(self._addr_bits["nbout"])
        m.d.sync += [s1["valid"].eq(issuing), s1["first"].eq(first), s1["last"].eq(last),
                     s1["final"].eq(final), s1_row.eq(dst + blk)]
        m.submodules.array = array = MacArray(R, C, backend=self._backend)
        m.d.comb += [array.en.eq(s1["valid"]), array.x.eq(self.nbin_r.data),
                     array.w.eq(self.sb_r.data)]

        # -- stage 2: accumulate -------------------------------------------------------------
        s2 = {n: Signal(name=f"s2_{n}") for n in ("valid", "first", "last", "final")}
        s2_row = Signal.like(s1_row)
        s2_sum = [array.sums.word_select(r, array.sum_bits).as_signed() for r in range(R)]
        s2_bias = Signal(R * ELEM_BITS)
        m.d.sync += [s2[n].eq(s1[n]) for n in s2] + [s2_row.eq(s1_row)]
        with m.If(s1["valid"]):
            m.d.sync += s2_bias.eq(Mux(flags.bias, self.nbout_r.data, 0))
        m.d.comb += self.mac_cycles.eq(s1["valid"])

        acc = [Signal(signed(cfg.acc_bits), name=f"acc{r}") for r in range(R)]
        s3_valid = Signal()
        s3_final = Signal()
        s3_row = Signal.like(s1_row)
        with m.If(s2["valid"]):
            for r in range(R):
                init = s2_bias.word_select(r, ELEM_BITS).as_signed() << cfg.frac_bits
                m.d.sync += acc[r].eq(Mux(s2["first"], init, acc[r]) + s2_sum[r])
        m.d.sync += [s3_valid.eq(s2["valid"] & s2["last"]), s3_final.eq(s2["valid"] & s2["final"]),
                     s3_row.eq(s2_row)]

        # -- stage 3: write back -------------------------------------------------------------
        m.d.comb += [
            self.nbout_w.addr.eq(s3_row),
            self.nbout_w.data.eq(Cat(write_back(m, a, cfg.frac_bits, flags.act) for a in acc)),
            self.nbout_w.en.eq(s3_valid),
        ]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.busy.eq(1)
                with m.If(err_code != Err.NONE):
                    m.d.comb += [self.cmd.err.eq(1), self.cmd.err_code.eq(err_code),
                                 self.cmd.err_addr.eq(err_addr)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [issuing.eq(1), kk.eq(0), blk.eq(0), w_ptr.eq(wts)]
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                with m.If(s3_final):
                    m.d.comb += self.cmd.done.eq(1)
                    m.next = "IDLE"
        return m
