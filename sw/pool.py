"""Pooling layer (max or average, k x k, stride s) on the vector unit.

Input and output both sit in NBin: a tile is ``ty`` output rows of one group of channel chunks
(the tiler, :func:`.tiler.plan_pool`, picks both), and the NBin ring holds two tiles, each an
input slot (``(ty - 1) * s + k`` rows of pixels, ``chunks`` NBin rows a pixel) and an output
slot. Per tile: load the input rows, one :attr:`Op.VEC`, store the output rows. Padding is the
input tensor's halo (for max pooling, filled with the most negative value).
"""

from . import golden
from .functions import VEC, dma_task
from .isa import Act, Buf, Space, VecFn
from .layer import Layer, covered
from .schedule import Task
from .tensor import out_size
from .tiler import plan_pool
from .workload import CompileError

__all__ = ["PoolLayer"]

_KINDS = {"max": VecFn.MAX, "avg": VecFn.AVG}


class PoolLayer(Layer):
    """Max or average pooling of the view ``x`` (its padding is the pool's) with a ``kernel``
    window (an int, or (kh, kw)) moving by ``stride``, written to channels ``channel`` ..
    of the interior of ``out``. A max pool may run as two passes (along the rows, then down
    the columns: ``separable``, by default when the tiler estimates it faster)."""

    kind = "pool"

    def __init__(self, config, name, x, *, kernel, stride, kind="max", act=Act.NONE, out,
                 channel=0, separable=None):
        if kind not in _KINDS:
            raise CompileError(f"{name}: pooling is max or avg, not {kind!r}")
        super().__init__(config, name, (x,), out, channel)
        self.x = x
        self.kh, self.kw = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        self.stride, self.pool, self.act = stride, kind, Act(act)
        self.oh, self.ow = out_size(x.hp, self.kh, stride), out_size(x.wp, self.kw, stride)
        V = config.beat_elems
        if self.oh < 1 or self.ow < 1:
            raise CompileError(f"{name}: a {self.kh}x{self.kw} window does not fit a "
                               f"{x.hp}x{x.wp} input")
        if (out.h, out.w) != (self.oh, self.ow):
            raise CompileError(f"{name}: output tensor is {out.h}x{out.w}, the layer writes "
                               f"{self.oh}x{self.ow}")
        if channel % V or channel + x.cpitch > out.cpitch:
            raise CompileError(f"{name}: channels {channel}..{channel + x.c} do not start on a "
                               f"beat ({V} channels) inside the output's {out.cpitch}")
        # A max over rows of maxima over columns is the max over the window, exactly; an
        # average of sums could saturate in between, so it is not split. ``separable`` None
        # lets the tiler choose.
        if separable and kind != "max":
            raise CompileError(f"{name}: only a max pool runs as two passes")
        passes = {None: (1, 2) if kind == "max" else (1,), True: (2,), False: (1,)}[separable]
        self.plan = plan_pool(config, name, hp=x.hp, wp=x.wp, cpitch=x.cpitch, kh=self.kh,
                              kw=self.kw, stride=stride, oh=self.oh, ow=self.ow, passes=passes)

    @property
    def out_shape(self):
        return (self.oh, self.ow, self.x.c)

    def input_elems(self):
        x, s = self.x, self.stride
        top, left = x.pads[:2]
        return (covered(x.h, top, self.kh, s, self.oh) * covered(x.w, left, self.kw, s, self.ow)
                * x.c)

    def golden(self, x):
        return golden.pool2d(x, (self.kh, self.kw), self.stride, 0, self.pool, act=self.act,
                             frac_bits=self.config.frac_bits)

    def details(self):
        p = self.plan
        return {"kind": self.pool, "in": [self.x.h, self.x.w, self.x.c],
                "pads": list(self.x.pads), "out": [self.oh, self.ow, self.x.c],
                "kernel": [self.kh, self.kw], "stride": self.stride,
                "act": self.act.name.lower(),
                "tiling": {"chunks_per_tile": p.chunks, "channel_groups": p.groups,
                           "rows_per_tile": p.ty, "separable": bool(p.mid_slot_rows),
                           "estimate": p.estimate}}

    def _vec(self, fn, act, src, dst, rows, kh, kw, in_width, step, chunks, reads, writes):
        """One VEC over ``rows`` rows of ``ow`` output pixels, a ``kh x kw`` window moving by
        ``step = (x, y)`` pixels over an input ``in_width`` pixels wide."""
        p = self.plan
        return Task(VEC[fn, act], dict(
            dst=dst, src=src, src_b=0, chunks=chunks, kh=kh, kw=kw,
            kh_stride=in_width * p.chunks, kw_stride=p.chunks, x_count=self.ow,
            x_stride=step[0] * p.chunks, y_count=rows, y_stride=step[1] * in_width * p.chunks,
            dst_x_stride=p.chunks, dst_y_stride=self.ow * p.chunks,
            scale=golden.avg_scale(kh * kw) if self.pool == "avg" else 0),
            reads=reads, writes=writes)

    def steps(self):
        cfg, p, x, out = self.config, self.plan, self.x, self.out
        C, V = cfg.pe_cols, cfg.beat_elems
        row_beats = C // V
        s, kh, kw = self.stride, self.kh, self.kw
        fn = _KINDS[self.pool]
        steps, count = [], 0
        for gi in range(p.groups):
            ch0 = gi * p.chunks * C
            lanes = min(p.chunks * C, x.cpitch - ch0)
            chunks = -(-lanes // C)
            for y0 in range(0, self.oh, p.ty):
                ty = min(p.ty, self.oh - y0)
                in_rows = (ty - 1) * s + kh
                base = (count % p.slots) * p.slot_rows
                islot = self.place(Space.NBIN, base, p.in_slot_rows)
                oslot = self.place(Space.NBIN, base + p.in_slot_rows + p.mid_slot_rows,
                                   p.out_slot_rows)
                count += 1
                in_fp = (Space.NBIN, islot * row_beats, p.in_slot_rows * row_beats)
                out_fp = (Space.NBIN, oslot * row_beats, p.out_slot_rows * row_beats)
                src = x.beat(y0 * s, 0, ch0)
                src_span = ((in_rows - 1) * x.row_pitch_beats + (x.wp - 1) * x.pixel_beats
                            + lanes // V)
                dst = out.beat(y0, 0, self.channel + ch0)
                dst_span = ((ty - 1) * out.row_pitch_beats + (self.ow - 1) * out.pixel_beats
                            + lanes // V)
                step = [dma_task("load", Buf.NBIN,
                    dram_addr=src, buf_addr=islot * row_beats, planes=in_rows, rows=x.wp,
                    row_beats=lanes // V, dram_stride=x.pixel_beats,
                    buf_stride=p.chunks * row_beats, dram_plane_stride=x.row_pitch_beats,
                    buf_plane_stride=x.wp * p.chunks * row_beats,
                    reads=((Space.DRAM, src, src_span),), writes=(in_fp,))]
                if p.mid_slot_rows:          # separable: along every input row, then down
                    mid = self.place(Space.NBIN, base + p.in_slot_rows, p.mid_slot_rows)
                    mid_fp = (Space.NBIN, mid * row_beats, p.mid_slot_rows * row_beats)
                    step.append(self._vec(fn, Act.NONE, islot, mid, in_rows, 1, kw, x.wp,
                                          (s, 1), chunks, (in_fp,), (mid_fp,)))
                    step.append(self._vec(fn, self.act, mid, oslot, ty, kh, 1, self.ow,
                                          (1, s), chunks, (mid_fp,), (out_fp,)))
                else:
                    step.append(self._vec(fn, self.act, islot, oslot, ty, kh, kw, x.wp,
                                          (s, s), chunks, (in_fp,), (out_fp,)))
                step.append(dma_task("store", Buf.NBIN,
                    dram_addr=dst, buf_addr=oslot * row_beats, planes=ty, rows=self.ow,
                    row_beats=lanes // V, dram_stride=out.pixel_beats,
                    buf_stride=p.chunks * row_beats, dram_plane_stride=out.row_pitch_beats,
                    buf_plane_stride=self.ow * p.chunks * row_beats,
                    reads=(out_fp,), writes=((Space.DRAM, dst, dst_span),)))
                steps.append(step)
        return steps
