"""The PFU's lane arithmetic, registered and enabled: the vector unit's window fold and the
write-back (rounding, saturation, activation) of the MAC array and the vector unit.

``backend="verilog"`` instantiates ``rtl/verilog/dypipe_lanes.v``, which computes only on
enabled clock edges, so Verilator skips the lanes while the PFU idles; ``"amaranth"`` builds
the same logic here for Amaranth's simulator."""

from amaranth import Module, Const, Cat, Mux, Shape, Signal, signed
from amaranth.hdl import Instance, ClockSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import ELEM_BITS
from ..sw.isa import AVG_SHIFT, Act, VecFn
from ..sw.pwl import COEFF_BITS, SEGMENTS, table
from .activation import activate, pwl_curve, pwl_operands, round_shift, saturate

__all__ = ["LaneFold", "LaneFinish", "FOLD_BITS", "SCALE_BITS", "SCALED_BITS"]

#: Width of a vector-unit lane accumulator: a product of two values, or a window sum.
FOLD_BITS = 2 * ELEM_BITS
#: Width of AVG's scale (unsigned): the vector unit multiplies a window sum by it. The scale
#: is ``2**AVG_SHIFT / window``, at most ``2**AVG_SHIFT`` (a window of one row).
SCALE_BITS = AVG_SHIFT + 1
#: Width of a lane the vector unit hands its finish: a window sum times the scale (AVG), or
#: the fold's lane as it is. A signed FOLD_BITS-bit value times an unsigned SCALE_BITS-bit one
#: fits in FOLD_BITS + SCALE_BITS signed bits.
SCALED_BITS = FOLD_BITS + SCALE_BITS


def _packed(values):
    """A table as one constant, entry ``i`` in bits ``[i*COEFF_BITS, (i+1)*COEFF_BITS)``."""
    mask = (1 << COEFF_BITS) - 1
    return Const(sum((v & mask) << (i * COEFF_BITS) for i, v in enumerate(values)),
                 SEGMENTS * COEFF_BITS)


def _codes(enum, prefix, *names):
    """Instance parameters ``p_<prefix>_<NAME>`` with ``enum``'s codes and ``p_<prefix>_BITS``
    with its width: the Verilog twins take every code and width from :mod:`dypipe.sw.isa`,
    none is written there by hand."""
    return {f"p_{prefix}_BITS": Shape.cast(enum).width,
            **{f"p_{prefix}_{name}": enum[name].value for name in names}}


def _lanes(value, n, width):
    return [value.word_select(i, width).as_signed() for i in range(n)]


class LaneFold(wiring.Component):
    """On ``en``: each lane of ``acc`` becomes ``d`` (``first``) or folds ``d`` in by ``fn``.
    MUL multiplies ``d`` by the lane's low 16 bits, signed: its window is two rows (a, then
    b), so the lane holds a's value, and the multiplier is 16 x 16, one DSP block, instead of
    32 x 16 with an adder behind it."""

    def __init__(self, lanes, *, backend="amaranth"):
        self._n, self._backend = lanes, backend
        super().__init__({"en": In(1), "first": In(1), "fn": In(VecFn),
                          "d": In(ELEM_BITS * lanes), "acc": Out(FOLD_BITS * lanes)})

    @property
    def params(self):
        """The constructor's arguments but ``backend``."""
        return {"lanes": self._n}

    def elaborate(self, platform):
        m = Module()
        if self._backend == "verilog":
            m.submodules.lanes = Instance(
                "dypipe_lane_fold", p_N=self._n, p_ELEM_BITS=ELEM_BITS, p_FOLD_BITS=FOLD_BITS,
                **_codes(VecFn, "FN", "MAX", "MUL", "COPY"),
                i_clk=ClockSignal(), i_en=self.en,
                i_first=self.first, i_fn=self.fn, i_d=self.d, o_acc=self.acc)
            return m
        with m.If(self.en):
            for a, d in zip(_lanes(self.acc, self._n, FOLD_BITS),
                            _lanes(self.d, self._n, ELEM_BITS)):
                with m.If(self.first):
                    m.d.sync += a.eq(d)
                with m.Elif(self.fn == VecFn.MAX):
                    m.d.sync += a.eq(Mux(d > a, d, a))
                with m.Elif(self.fn == VecFn.MUL):
                    m.d.sync += a.eq(a[:ELEM_BITS].as_signed() * d)
                with m.Elif(self.fn != VecFn.COPY):       # COPY keeps the window's first row
                    m.d.sync += a.eq(a + d)
        return m


class LaneFinish(wiring.Component):
    """On ``en``: each lane of ``out`` becomes ``act(saturate16(v))``; ``v`` rounds ``in`` by
    ``frac_bits + wshift`` for the MAC array, and for the vector unit (``vector=True``) is
    AVG's ``in`` (the window sum times the scale, which the vector unit multiplies in the cycle
    before) rounded by AVG_SHIFT, MUL's ``in`` rounded by ``frac_bits``, else ``in``.

    The register sits inside the activation: ``en`` latches each lane's ``saturate16(v)``,
    ``act``, and where sigmoid's or tanh's curve takes ``v`` (the clamped value and its
    segment, computed beside the saturation), and ``out`` is their activation, so ``out``
    changes on the same clock edges as a register of it would, with the rounding, the
    saturation and the segment in front of the register and the table, the curve's
    multiplier and the last saturation behind it (docs/fpga.md). The Verilog twin registers
    ``out`` itself; ``dypipe equiv`` proves the two agree in every cycle."""

    def __init__(self, lanes, in_bits, frac_bits, *, vector, backend="amaranth"):
        self._n, self._in_bits, self._frac = lanes, in_bits, frac_bits
        self._vector, self._backend = vector, backend
        super().__init__({"en": In(1), "fn": In(VecFn), "act": In(Act),
                          "wshift": In(4), "inp": In(in_bits * lanes),
                          "out": Out(ELEM_BITS * lanes)})

    @property
    def params(self):
        """The constructor's arguments but ``backend``."""
        return {"lanes": self._n, "in_bits": self._in_bits, "frac_bits": self._frac,
                "vector": self._vector}

    def elaborate(self, platform):
        m = Module()
        n, f = self._n, self._frac
        if self._backend == "verilog":
            params = {}
            for act, key in ((Act.SIGMOID, "SIG"), (Act.TANH, "TANH")):
                shift, slopes, inters = table(act, f)
                params[f"p_{key}_SHIFT"] = shift
                params[f"p_{key}_SLOPE"] = _packed(slopes)
                params[f"p_{key}_INTER"] = _packed(inters)
            m.submodules.lanes = Instance(
                "dypipe_lane_finish", p_N=n, p_ELEM_BITS=ELEM_BITS, p_IN_BITS=self._in_bits, p_F=f,
                p_SEGMENTS=SEGMENTS, p_CB=COEFF_BITS,
                p_VEC=int(self._vector), p_AVG_SHIFT=AVG_SHIFT, **params,
                **_codes(VecFn, "FN", "AVG", "MUL"),
                **_codes(Act, "ACT", "RELU", "SIGMOID", "TANH"),
                i_clk=ClockSignal(), i_en=self.en, i_fn=self.fn, i_act=self.act,
                i_wshift=self.wshift, i_in=self.inp, o_out=self.out)
            return m
        act = Signal(Act, name="act_held")
        results = []
        for k, a in enumerate(_lanes(self.inp, n, self._in_bits)):
            if self._vector:
                # AVG rounds ``a`` (a sum times the scale) by AVG_SHIFT, MUL rounds ``a`` by
                # ``f``: one adder (round_shift's) for both, after the narrowing shift of each.
                avg = a >> (AVG_SHIFT - 1)
                rounded = round_shift(Mux(self.fn == VecFn.AVG, avg, a >> (f - 1)), 1)
                value = Mux((self.fn == VecFn.AVG) | (self.fn == VecFn.MUL), rounded, a)
            else:
                value = round_shift(a, f, self.wshift)
            held = Signal(signed(ELEM_BITS), name=f"lane{k}_held")
            xc, seg = pwl_operands(m, value, self.act == Act.TANH, f, f"lane{k}_pwl")
            xc_held, seg_held = Signal.like(xc, name=f"lane{k}_xc_held"), Signal.like(seg)
            with m.If(self.en):
                m.d.sync += [held.eq(saturate(m, value, f"lane{k}_sat")), xc_held.eq(xc),
                             seg_held.eq(seg)]
            curve = pwl_curve(m, xc_held, seg_held, f, f"lane{k}_pwl")
            results.append(activate(m, held, act, curve, f"lane{k}"))
        with m.If(self.en):
            m.d.sync += act.eq(self.act)
        m.d.comb += self.out.eq(Cat(results))
        return m
