"""Elementwise layers on the vector unit: ``a + b``, ``a * b`` (fixed point) or a standalone
activation of ``a``, over flat vectors.

A tile is up to ``T`` NBin rows of each operand and of the result; the NBin ring holds two
tiles. Per tile: load a (and b), one :attr:`Op.VEC`, store the result.
"""

from . import golden
from .functions import LOAD, STORE, VEC, dma_params
from .isa import Act, Buf, Space, VecFn
from .schedule import Task
from .workload import CompileError

__all__ = ["EltwiseLayer"]

_OPS = {"add": VecFn.ADD, "mul": VecFn.MUL, "act": VecFn.COPY}


class EltwiseLayer:
    """``op`` is ``"add"``, ``"mul"`` or ``"act"`` (``b`` unused); ``a``, ``b`` and ``out``
    are DRAM regions of at least ``n`` elements."""

    def __init__(self, config, name, op, a, b, out, n, act=Act.NONE):
        if op not in _OPS:
            raise CompileError(f"{name}: elementwise op is one of {sorted(_OPS)}, not {op!r}")
        self.config, self.name, self.op, self.act = config, name, op, Act(act)
        self.a, self.b, self.out, self.n = a, b, out, n
        for region in (a, out) + ((b,) if op != "act" else ()):
            if region.elems < n:
                raise CompileError(f"{name}: region {region.name} holds {region.elems} values, "
                                   f"the layer uses {n}")
        C = config.pe_cols
        self.rows = -(-n // C)
        operands = 3 if op != "act" else 2
        per_tile = config.nbin_rows // (2 * operands)
        if per_tile < 1:
            raise CompileError(f"{name}: NBin ({config.nbin_rows} rows) cannot hold two tiles "
                               f"of {operands} rows")
        self.tile_rows = min(per_tile, self.rows)
        self.slot_rows = operands * self.tile_rows

    def golden(self, a, b=None):
        c = self.config
        if self.op == "act":
            return golden.eltwise(a, 0 * a, "add", c.frac_bits, self.act)
        return golden.eltwise(a, b, self.op, c.frac_bits, self.act)

    def meta(self):
        return {"layer": "eltwise", "op": self.op, "act": self.act.name.lower(), "n": self.n,
                "macs": 0, "tiling": {"rows_per_tile": self.tile_rows}}

    def steps(self):
        cfg = self.config
        C, V = cfg.pe_cols, cfg.beat_elems
        row_beats = C // V
        fn = VEC[_OPS[self.op], self.act]
        binary = self.op != "act"
        steps = []
        for t, r0 in enumerate(range(0, self.rows, self.tile_rows)):
            rows = min(self.tile_rows, self.rows - r0)
            elems = min(rows * C, self.n - r0 * C)
            beats = -(-elems // V)
            base = (t % 2) * self.slot_rows
            a_row, b_row = base, base + self.tile_rows
            o_row = base + (2 if binary else 1) * self.tile_rows
            step = []
            for region, row in ((self.a, a_row),) + (((self.b, b_row),) if binary else ()):
                dram = region.beat + r0 * row_beats
                step.append(Task(LOAD[Buf.NBIN], dma_params(
                    dram_addr=dram, buf_addr=row * row_beats, row_beats=beats),
                    reads=((Space.DRAM, dram, beats),),
                    writes=((Space.NBIN, row * row_beats, self.tile_rows * row_beats),)))
            in_fp = (Space.NBIN, base * row_beats, (o_row - base) * row_beats)
            out_fp = (Space.NBIN, o_row * row_beats, self.tile_rows * row_beats)
            step.append(Task(fn, dict(
                dst=o_row, src=a_row, src_b=b_row, chunks=rows, kh=1, kw=1, kh_stride=0,
                kw_stride=0, x_count=1, x_stride=0, y_count=1, y_stride=0, dst_x_stride=0,
                dst_y_stride=0, scale=0), reads=(in_fp,), writes=(out_fp,)))
            dram = self.out.beat + r0 * row_beats
            step.append(Task(STORE[Buf.NBIN], dma_params(
                dram_addr=dram, buf_addr=o_row * row_beats, row_beats=beats),
                reads=(out_fp,), writes=((Space.DRAM, dram, beats),)))
            steps.append(step)
        return steps
