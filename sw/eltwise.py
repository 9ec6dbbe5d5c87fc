"""Elementwise layers on the vector unit: ``a + b``, ``a * b`` (fixed point) or a standalone
activation of ``a``, over tensors of one shape.

A tile is a run of the tensors' values in NBin, packed back to back, one slot per operand and
one for the result; the NBin ring holds two tiles. Per tile: load a (and b), one
:attr:`Op.VEC`, store the result. Tensors stored without a halo are one flat run of values,
tiled by NBin rows; tensors with a halo (or seen through a view with less padding than it) are
tiled by image rows, each row a strided transfer.
"""

from . import golden
from .functions import VEC, dma_task
from .isa import Act, Buf, Space, VecFn
from .layer import Layer
from .schedule import Task
from .workload import CompileError

__all__ = ["EltwiseLayer"]

_OPS = {"add": VecFn.ADD, "mul": VecFn.MUL, "act": VecFn.COPY}


def _flat(t):
    """Whether the view's values are one contiguous run in DRAM (no halo around them)."""
    return t.halo == 0


class EltwiseLayer(Layer):
    """``op`` is ``"add"``, ``"mul"`` or ``"act"`` (``b`` unused, may be None); ``a``, ``b``
    (views without padding) and ``out`` (written in its interior) are tensors of the same
    height, width, channels and pixel pitch."""

    kind = "eltwise"

    def __init__(self, config, name, op, a, b, out, act=Act.NONE):
        if op not in _OPS:
            raise CompileError(f"{name}: elementwise op is one of {sorted(_OPS)}, not {op!r}")
        inputs = (a, b) if op != "act" else (a,)
        super().__init__(config, name, inputs, out)
        self.op, self.act, self.a, self.b = op, Act(act), a, b
        tensors = inputs + (self.out,)
        for t in tensors:
            if (t.h, t.w, t.c, t.cpitch) != (a.h, a.w, a.c, a.cpitch) or any(t.pads):
                raise CompileError(
                    f"{name}: {t.region.name} is {t.h}x{t.w}x{t.c} (pitch {t.cpitch}, padding "
                    f"{t.pads}); elementwise operands must all be {a.h}x{a.w}x{a.c} (pitch "
                    f"{a.cpitch}) without padding")
        C = config.pe_cols
        self.operands = len(tensors)
        self.by_rows = not all(_flat(t) for t in tensors)
        # A tile is `unit` elements times `count`: NBin rows (flat) or image rows.
        unit = C if not self.by_rows else a.w * a.cpitch
        total = -(-a.h * a.w * a.cpitch // C) if not self.by_rows else a.h
        rows_per_unit = 1 if not self.by_rows else -(-unit // C)
        per_tile = config.nbin_rows // (2 * self.operands * rows_per_unit)
        if per_tile < 1:
            raise CompileError(f"{name}: NBin ({config.nbin_rows} rows) cannot hold two tiles "
                               f"of {self.operands} operands of {rows_per_unit} rows")
        self.tile_units = min(per_tile, total)
        self.units, self.unit_elems = total, unit
        self.tile_rows = self.tile_units * rows_per_unit
        self.elems = a.h * a.w * a.cpitch

    @property
    def out_shape(self):
        return (self.a.h, self.a.w, self.a.c)

    def golden(self, a, b=None):
        c = self.config
        if self.op == "act":
            return golden.eltwise(a, 0 * a, "add", c.frac_bits, self.act)
        return golden.eltwise(a, b, self.op, c.frac_bits, self.act)

    def details(self):
        return {"op": self.op, "act": self.act.name.lower(), "shape": list(self.out_shape),
                "tiling": {"rows_per_tile": self.tile_rows, "by_image_rows": self.by_rows}}

    def _transfer(self, t, first, units):
        """DRAM side of ``units`` tile units of tensor ``t`` from unit ``first``: the DMA
        parameters (without the buffer side) and the span."""
        V = self.config.beat_elems
        if not self.by_rows:
            C = self.config.pe_cols
            beats = -(-min(units * C, self.elems - first * C) // V)
            dram = t.region.beat + first * (C // V)
            return dict(dram_addr=dram, row_beats=beats), (dram, beats)
        row_beats = t.w * t.pixel_beats
        dram = t.beat(first, 0)
        return (dict(dram_addr=dram, rows=units, row_beats=row_beats,
                     dram_stride=t.row_pitch_beats, buf_stride=row_beats),
                (dram, (units - 1) * t.row_pitch_beats + row_beats))

    def steps(self):
        cfg = self.config
        C, V = cfg.pe_cols, cfg.beat_elems
        row_beats = C // V
        fn = VEC[_OPS[self.op], self.act]
        binary = self.op != "act"
        operands = ((self.a,), (self.a, self.b))[binary]
        steps = []
        for t, u0 in enumerate(range(0, self.units, self.tile_units)):
            units = min(self.tile_units, self.units - u0)
            nrows = (-(-units * self.unit_elems // C) if self.by_rows
                     else -(-min(units * C, self.elems - u0 * C) // C))
            base = (t % 2) * self.operands * self.tile_rows
            rows = [self.place(Space.NBIN, base + k * self.tile_rows, self.tile_rows)
                    for k in range(self.operands)]
            step = []
            for tensor, row in zip(operands, rows):
                dma, (dram, span) = self._transfer(tensor, u0, units)
                step.append(dma_task("load", Buf.NBIN, buf_addr=row * row_beats, **dma,
                                 reads=((Space.DRAM, dram, span),),
                                 writes=((Space.NBIN, row * row_beats,
                                          self.tile_rows * row_beats),)))
            o_row = rows[-1]
            lo, hi = min(rows[:-1]), max(rows[:-1]) + self.tile_rows
            in_fp = (Space.NBIN, lo * row_beats, (hi - lo) * row_beats)
            out_fp = (Space.NBIN, o_row * row_beats, self.tile_rows * row_beats)
            step.append(Task(fn, dict(
                dst=o_row, src=rows[0], src_b=rows[1] if binary else 0, chunks=nrows, kh=1,
                kw=1, kh_stride=0, kw_stride=0, x_count=1, x_stride=0, y_count=1, y_stride=0,
                dst_x_stride=0, dst_y_stride=0, scale=0), reads=(in_fp,), writes=(out_fp,)))
            dma, (dram, span) = self._transfer(self.out, u0, units)
            step.append(dma_task("store", Buf.NBIN, buf_addr=o_row * row_beats, **dma,
                             reads=(out_fp,), writes=((Space.DRAM, dram, span),)))
            steps.append(step)
        return steps
