"""Convolution layer: ``y = act(conv(x, W) + b)``, compiled to Load / Compute / Store tasks.

The input sits in NBin with its pixels packed back to back (``P`` elements each): a kernel
row's ``kw * P`` values are one span of C-wide chunks, which the conv engine reads starting at
any lane. The tiler (:mod:`.tiler`) picks the output rows and columns per tile and the output
blocks per group. The tasks, in order::

    load bias (once)
    for each tile of output rows x columns:   load the input it needs        (NBin ring of 2)
        for each group g of output blocks:    load weight set g              (SB ring, or once)
                                              CONV: the tile's pixels, blocks of g
                                              store the group's outputs       (NBout ring of 2)

Weights in DRAM: set g is one contiguous transfer of SB rows; row (i, h, k) of a set holds the
R x C block for output block i, kernel row h, chunk k, whose lane (r, c) is ``W[o, ci, h, j]``
for the element ``k*C + c = j*P + ci`` of the kernel row's span (zero where ``ci >= cin`` or
``o >= cout``, and past the span).
"""

import dataclasses
import functools

import numpy as np

from . import golden
from .functions import conv_function, dma_params, dma_task
from .isa import Act, Buf, Space, Unit, DMA_PARAMS
from .layer import Layer, covered
from .program import module_function
from .schedule import Task
from .tensor import out_size
from .tiler import plan_conv, input_extent
from .workload import CompileError

__all__ = ["ConvLayer", "conv_weights", "stack_input", "stack_weights"]


@dataclasses.dataclass(frozen=True)
class _Geom:
    """A convolution as the array runs it: its name, kernel, stride, channels (``cin``, stored
    ``cpitch`` apart), input width ``wp`` and weights."""
    name: str
    kh: int
    kw: int
    stride: int
    cin: int
    cpitch: int
    wp: int
    weights: object


@functools.lru_cache(maxsize=None)
def _stacked_load(kh):
    """A load task of ``kh`` transfers (:data:`DMA_PARAMS`, then ``dram_step`` and
    ``buf_step``, what the next transfer adds to the two addresses)."""
    @module_function(Unit.IO, *DMA_PARAMS, "dram_step", "buf_step", name=f"load_stacked_{kh}")
    def load(f, p):
        for i in range(kh):
            if i:
                f.emit(f"add {p.dram_addr}, {p.dram_addr}, {p.dram_step}")
                f.emit(f"add {p.buf_addr}, {p.buf_addr}, {p.buf_step}")
            f.dload(Buf.NBIN, p.dram_addr, planes=True)
    return load


def conv_weights(weights, pitch, chunks, R, C):
    """The weights as the array reads them: (blocks, kh, chunks, R, C), for an input whose
    pixels are ``pitch`` elements apart."""
    cout, cin, kh, kw = weights.shape
    blocks = -(-cout // R)
    w = np.zeros((blocks * R, kh, chunks * C), dtype=np.int16)
    for j in range(kw):
        w[:cout, :, j * pitch:j * pitch + cin] = weights[:, :, :, j].transpose(0, 2, 1)
    return w.reshape(blocks, R, kh, chunks, C).transpose(0, 2, 3, 1, 4)


def stack_input(xp, kh, kw, stride):
    """A first layer's input, laid out by the host for a convolution over few channels: output
    row ``y`` of a ``kh x kw`` window moving by ``stride`` over the padded input ``xp`` (Hp,
    Wp, cin) becomes row ``y`` of a map whose pixel ``x'`` holds the ``kh`` rows by ``stride``
    columns of channels starting at input pixel ``(y * stride, x' * stride)``, as channels
    ``(i, j, c)``. A convolution of it with :func:`stack_weights` (1 x ceil(kw / stride),
    stride 1, no padding) gives the same outputs, with ``kh * stride`` times the channels:
    the array's lanes fill up where ``cin`` alone (3 for an image) would leave most idle."""
    xp = np.asarray(xp)
    hp, wp, cin = xp.shape
    s = stride
    oh, ow = out_size(hp, kh, s), out_size(wp, kw, s)
    cols = ow + -(-kw // s) - 1
    wide = np.zeros((hp, cols * s, cin), dtype=xp.dtype)
    n = min(wp, cols * s)
    wide[:, :n] = xp[:, :n]
    out = np.zeros((oh, cols, kh, s, cin), dtype=xp.dtype)
    for i in range(kh):
        out[:, :, i] = wide[i:i + (oh - 1) * s + 1:s].reshape(oh, cols, s, cin)
    return out.reshape(oh, cols, kh * s * cin)


def stack_weights(weights, stride):
    """The weights of the convolution :func:`stack_input` is for: (cout, kh * stride * cin, 1,
    ceil(kw / stride)), zero where a window column lies past ``kw``."""
    cout, cin, kh, kw = weights.shape
    s = stride
    out = np.zeros((cout, kh, s, cin, -(-kw // s)), dtype=weights.dtype)
    for col in range(kw):
        block, j = divmod(col, s)
        out[:, :, j, :, block] = weights[:, :, :, col].transpose(0, 2, 1)
    return out.reshape(cout, kh * s * cin, 1, -(-kw // s))


class ConvLayer(Layer):
    """One convolution placed in a DRAM image. ``x`` is a :class:`Tensor` view whose padding is
    the convolution's; the output goes to channels ``channel`` .. ``channel + cout`` of the
    interior of ``out`` (a channel slice of a wider tensor is concat by layout).
    ``compulsory`` = (input elements, weights and bias, MACs) of the convolution this one
    computes in another layout (the stacked first layer), for its roofline. The weights have
    ``frac_bits + w_shift`` fraction bits."""

    kind = "conv"

    def __init__(self, config, image, name, x, weights, bias, *, stride=1, act=Act.RELU,
                 out, channel=0, compulsory=None, w_shift=0):
        super().__init__(config, name, (x,), out, channel)
        self.x, self.compulsory, self.w_shift = x, compulsory, w_shift
        self.weights = np.asarray(weights, dtype=np.int16)
        self.bias = np.asarray(bias, dtype=np.int16)
        self.stride, self.act = stride, Act(act)
        cout, cin, kh, kw = self.weights.shape
        R, C, V = config.pe_rows, config.pe_cols, config.beat_elems
        if cin != x.c:
            raise CompileError(f"{name}: weights take {cin} channels, the input has {x.c}")
        self.oh, self.ow = out_size(x.hp, kh, stride), out_size(x.wp, kw, stride)
        if self.oh < 1 or self.ow < 1:
            raise CompileError(f"{name}: a {kh}x{kw} kernel does not fit a {x.hp}x{x.wp} input")
        if (out.h, out.w) != (self.oh, self.ow):
            raise CompileError(f"{name}: output tensor is {out.h}x{out.w}, the layer writes "
                               f"{self.oh}x{self.ow}")
        if channel % V or channel + -(-cout // V) * V > out.cpitch:
            raise CompileError(f"{name}: channels {channel}..{channel + cout} do not start on a "
                               f"beat ({V} channels) inside the output's {out.cpitch}")
        self.cout, self.cin, self.kh, self.kw = cout, cin, kh, kw
        self.geom, self.plan = self._mapping(name)
        plan = self.plan
        blocked = conv_weights(self.geom.weights, plan.pitch, plan.chunks, R, C)
        # One contiguous set per group; remember where each starts.
        parts, self.sets, beat = [], {}, 0
        for g in range(self.groups):
            part = blocked[g * plan.nb:(g + 1) * plan.nb].reshape(-1)
            self.sets[g] = (beat, part.size // (R * C))
            beat += part.size // V
            parts.append(part)
        self.rw = image.alloc(f"{name}.w", beat * V, np.concatenate(parts))
        b = np.zeros(plan.blocks * R, np.int16)
        b[:cout] = self.bias
        self.rb = image.alloc(f"{name}.b", b.size, b)

    def _mapping(self, name):
        """``(geometry, plan)``: the convolution as the array runs it, and its tiling. The
        plain mapping runs it as it is; the stacked one (for a stride that divides into the
        input's width) reads each output row's ``kh`` input rows as the channels of one pixel
        (:func:`stack_input`, built by ``kh`` strided loads a tile), a ``1 x ceil(kw / stride)``
        convolution over ``kh * stride`` times the channels, whose lanes fill up where few
        input channels would leave most of them idle. The faster estimate wins."""
        x, s, cfg = self.x, self.stride, self.config
        V = cfg.beat_elems
        plain = _Geom("plain", self.kh, self.kw, s, self.cin, x.cpitch, x.wp, self.weights)
        kw2 = -(-self.kw // s)
        cols = self.ow + kw2 - 1
        options = [plain]
        if self.kh > 1 and cols * s <= x.wp:
            wide = np.zeros((self.cout, x.cpitch, self.kh, self.kw), dtype=np.int16)
            wide[:, :self.cin] = self.weights
            lanes = self.kh * s * x.cpitch
            options.append(_Geom("stacked", 1, kw2, 1, lanes, lanes, cols,
                                 stack_weights(wide, s)))
        best, error = None, None
        for g in options:
            try:
                plan = plan_conv(cfg, name, wp=g.wp, cpitch=g.cpitch, cout=self.cout, kh=g.kh,
                                 kw=g.kw, stride=g.stride, oh=self.oh, ow=self.ow,
                                 out_cpitch=-(-self.cout // V) * V)
            except CompileError as exc:
                error = error or exc
                continue
            if best is None or plan.estimate < best[1].estimate:
                best = (g, plan)
        if best is None:
            raise error
        return best

    @property
    def groups(self):
        return -(-self.plan.blocks // self.plan.nb)

    @property
    def tiles(self):
        return -(-self.oh // self.plan.ty) * -(-self.ow // self.plan.tw)

    @property
    def macs(self):
        if self.compulsory:          # the weights were laid out with zeros
            return self.compulsory[2]
        return self.oh * self.ow * self.cout * self.cin * self.kh * self.kw

    @property
    def out_shape(self):
        return (self.oh, self.ow, self.cout)

    @property
    def weight_elems(self):
        if self.compulsory:
            return self.compulsory[1]
        return self.weights.size + self.bias.size

    def input_elems(self):
        if self.compulsory:          # the input was laid out with copies, the weights with zeros
            return self.compulsory[0]
        x, s = self.x, self.stride
        top, left = x.pads[:2]
        return (covered(x.h, top, self.kh, s, self.oh) * covered(x.w, left, self.kw, s, self.ow)
                * x.c)

    def golden(self, x):
        c = self.config
        return golden.conv2d(x, self.weights, self.bias, self.stride, 0, c.frac_bits, self.act,
                             c.acc_bits, self.w_shift)

    def details(self):
        p = self.plan
        return {"in": [self.x.h, self.x.w, self.cin], "pads": list(self.x.pads),
                "out": [self.oh, self.ow, self.cout], "kernel": [self.kh, self.kw],
                "stride": self.stride, "act": self.act.name.lower(),
                "tiling": {"mapping": self.geom.name, "pitch": p.pitch,
                           "chunks": p.chunks, "rows_per_tile": p.ty,
                           "loop": "groups outer" if p.groups_outer else "tiles outer",
                           "columns_per_tile": p.tw, "blocks_per_group": p.nb,
                           "tiles": self.tiles, "groups": self.groups,
                           "weights_resident": p.resident,
                           "weight_slots": "overlapping" if p.w_slots == 1 and not p.resident
                           else p.w_slots, "estimate": p.estimate}}

    def _load_input(self, islot, image_row, first, rows, slot_rows, x0, cols):
        """Load ``rows`` rows of the mapped input from row ``image_row + first``, ``cols``
        pixels from column ``x0``, into the tile slot at NBin row ``islot``, declaring
        ``slot_rows`` NBin rows from there written."""
        cfg, p, x, g = self.config, self.plan, self.x, self.geom
        in_beats = cfg.pe_cols // cfg.beat_elems
        buf = (islot + first * p.row_rows) * in_beats
        if g.name == "stacked":
            return self._load_stacked(buf, image_row + first, rows, slot_rows, x0, cols)
        src = x.beat(image_row + first, x0)
        # Whole image rows (of the tile's columns), rows of NBin apart.
        load = dma_params(dram_addr=src, buf_addr=buf, rows=rows,
                          row_beats=cols * x.pixel_beats, dram_stride=x.row_pitch_beats,
                          buf_stride=p.row_rows * in_beats)
        span = (rows - 1) * x.row_pitch_beats + cols * x.pixel_beats
        return dma_task("load", Buf.NBIN, **load, reads=((Space.DRAM, src, span),),
                    writes=((Space.NBIN, buf, slot_rows * in_beats),))

    def _load_stacked(self, buf, row, rows, slot_rows, x0, cols):
        """Stacked rows ``row`` .. ``row + rows`` (output rows), stacked pixels ``x0`` ..
        ``x0 + cols``: ``kh`` transfers, one per input row of the window, each putting ``stride``
        input pixels into its lanes of every stacked pixel."""
        cfg, p, x, s = self.config, self.plan, self.x, self.stride
        V, in_beats = cfg.beat_elems, cfg.pe_cols // cfg.beat_elems
        src = x.beat(row * s, x0 * s)
        part = s * x.pixel_beats
        load = dma_params(dram_addr=src, buf_addr=buf, planes=rows, rows=cols, row_beats=part,
                          dram_stride=part, buf_stride=p.pitch // V,
                          dram_plane_stride=s * x.row_pitch_beats,
                          buf_plane_stride=p.row_rows * in_beats)
        span = ((rows - 1) * s + self.kh - 1) * x.row_pitch_beats + cols * part
        return Task(_stacked_load(self.kh), dict(load, dram_step=x.row_pitch_beats,
                                                 buf_step=part),
                    reads=((Space.DRAM, src, span),),
                    writes=((Space.NBIN, buf, slot_rows * in_beats),))

    def _weight_loads(self, key, sb_row, prev, part=None):
        """The loads of weight set ``key`` (its rows ``part = (first, end)``, default all) into
        SB rows from ``sb_row``; ``prev`` is the SB range (lo, hi) of the set loaded before it.
        Rows it shares with ``prev`` load last, in a transfer of their own, so that the rest
        need not wait for the last set's CONV."""
        sbb = self.config.sb_row_elems // self.config.beat_elems
        w_beat, w_rows = self.sets[key]
        first, end = part or (0, w_rows)
        w_beat += first * sbb
        base = sb_row
        sb_row, w_rows = base + first, end - first
        lo, hi = sb_row, sb_row + w_rows
        shared = (max(lo, prev[0]), min(hi, prev[1])) if prev else (lo, lo)
        pieces = [(lo, hi)] if shared[0] >= shared[1] else [
            piece for piece in ((lo, shared[0]), (shared[1], hi), shared) if piece[0] < piece[1]]
        tasks = []
        for a, b in pieces:
            dram = self.rw.beat + w_beat + (a - lo) * sbb
            tasks.append(dma_task("load", Buf.SB, dram_addr=dram, buf_addr=a * sbb,
                                                       row_beats=(b - a) * sbb,
                              reads=((Space.DRAM, dram, (b - a) * sbb),),
                              writes=((Space.SB, a * sbb, (b - a) * sbb),)))
        return tasks

    def steps(self):
        """The layer's tasks, one step per (tile, group)."""
        cfg, p = self.config, self.plan
        C, V = cfg.pe_cols, cfg.beat_elems
        sb_beats, out_beats, in_beats = cfg.sb_row_elems // V, cfg.nbout_row_elems // V, C // V
        geo = self.geom
        s, row_elems = geo.stride, p.row_rows * C
        bias = self.place(Space.NBOUT, 0, p.blocks)
        steps = [[dma_task("load", Buf.NBOUT, dram_addr=self.rb.beat,
                                                   buf_addr=bias * out_beats,
                                                   row_beats=self.rb.beats,
                       reads=((Space.DRAM, self.rb.beat, self.rb.beats),),
                       writes=((Space.NBOUT, bias * out_beats, self.rb.beats),))]]
        w_count = out_count = loaded = 0
        tile_loads, set_at = None, {}
        resident_at = [sum(self.sets[k][1] for k in range(g)) for g in range(self.groups)]
        tiles = [(y0, x0) for y0 in range(0, self.oh, p.ty) for x0 in range(0, self.ow, p.tw)]
        order = ([(t, g) for g in range(self.groups) for t in range(len(tiles))]
                 if p.groups_outer else
                 [(t, g) for t in range(len(tiles)) for g in range(self.groups)])
        for t, g in order:
            y0, x0 = tiles[t]
            ty, tw = min(p.ty, self.oh - y0), min(p.tw, self.ow - x0)
            step = []
            if p.groups_outer or g == 0:        # this step loads its input tile
                tile_loads = self._tile_loads(loaded, y0, x0, ty, tw)
                loaded += 1
                step.append(tile_loads["loads"][0])
            islot, in_fp, head, head_rows = (tile_loads[k] for k in ("islot", "in_fp", "head",
                                                                    "head_rows"))
            loads = tile_loads["loads"]
            nb = min(p.nb, p.blocks - g * p.nb)
            oslot = self.place(Space.NBOUT, p.blocks + (out_count % p.out_slots)
                               * p.out_slot_rows, p.out_slot_rows)
            out_count += 1
            out_fp = (Space.NBOUT, oslot * out_beats, ty * tw * nb * out_beats)
            # The weight sets this step loads: every step's own when they do not stay; else
            # each group's at its first tile; and with groups outer and a ring, a piece of the
            # next group's too (after this step's CONV), so that it loads while this group
            # computes without holding up this group's input tiles.
            own = g not in set_at or not (p.resident or p.groups_outer) and t > 0
            ahead = p.groups_outer and p.w_slots > 1 and g + 1 < self.groups
            if own:
                step += self._load_set(g, set_at, resident_at, count=w_count)
                w_count += not p.resident
            w_rows = self.sets[g][1]
            sb_row = set_at[g][0]
            w_fp = (Space.SB, sb_row * sb_beats, w_rows * sb_beats)
            bias_fp = (Space.NBOUT, (bias + g * p.nb) * out_beats, nb * out_beats)
            pieces = [(0, ty, in_fp)]
            if loaded == 1 and len(loads) > 1 and not tile_loads.get("split_used"):
                tile_loads["split_used"] = True
                part = (Space.NBIN, islot * in_beats, head_rows * p.row_rows * in_beats)
                pieces = [(0, head, part), (head, ty - head, in_fp)]
            for y, rows, fp in pieces:
                step.append(Task(conv_function(self.act, self.w_shift), dict(
                    dst=oslot + y * tw * nb, src=islot * C + y * s * row_elems,
                    weights=sb_row, k_chunks=p.chunks, m_blocks=nb,
                    bias=bias + g * p.nb, kh=geo.kh, kh_stride=row_elems,
                    x_count=tw, x_stride=s * p.pitch, y_count=rows,
                    y_stride=s * row_elems, dst_x_stride=nb, dst_y_stride=tw * nb),
                    reads=(fp, w_fp, bias_fp), writes=(out_fp,)))
                if y == 0 and len(pieces) > 1:
                    step.append(loads[1])
            if ahead:
                step += self._load_set(g + 1, set_at, resident_at, count=w_count,
                                       piece=(t, len(tiles)))
                w_count += t == len(tiles) - 1
            step.append(self._store(y0, x0, ty, tw, g, nb, oslot, out_fp))
            steps.append(step)
        return steps

    def _load_set(self, g, set_at, resident_at, count, piece=(0, 1)):
        """The loads of group ``g``'s weight set, the ``count``-th set loaded, into its place in
        SB (recorded in ``set_at``); rows it shares with the set loaded before it load last.
        ``piece = (i, n)``: only the ``i``-th of ``n`` nearly equal parts of its rows."""
        cfg, p = self.config, self.plan
        rows = self.sets[g][1]
        i, n = piece
        lo, hi = rows * i // n, rows * (i + 1) // n
        if p.resident:
            at = self.place(Space.SB, resident_at[g], rows)
        elif p.w_slots > 1:
            at = self.place(Space.SB, (count % p.w_slots) * p.w_slot_rows, p.w_slot_rows)
        else:                           # two overlapping slots, one at each end of SB
            at = self.place(Space.SB, 0 if count % 2 == 0 else cfg.sb_rows - rows, rows)
        tasks = self._weight_loads(g, at, set_at.get("last"), part=(lo, hi)) if hi > lo else []
        if i == n - 1:
            set_at[g] = set_at["last"] = (at, at + rows)
        return tasks

    def _tile_loads(self, count, y0, x0, ty, tw):
        """The loads of the ``count``-th input tile to load: its ``ty x tw`` outputs from
        (y0, x0). The very first loads in two parts, and its first CONV covers only the output
        rows the first part feeds, so the array starts before the whole tile has landed."""
        cfg, p, geo = self.config, self.plan, self.geom
        C, in_beats = cfg.pe_cols, cfg.pe_cols // cfg.beat_elems
        s, row_elems = geo.stride, p.row_rows * C
        in_rows = (ty - 1) * s + geo.kh
        cols = min(geo.wp - x0 * s, (tw - 1) * s + geo.kw)
        islot = self.place(Space.NBIN, (count % p.in_slots) * p.in_slot_rows, p.in_slot_rows)
        first = count == 0 and ty > 1
        head = max(1, ty // 4) if first else ty
        head_rows = in_rows
        if first:
            head_rows = min(in_rows, -(-input_extent(
                head, tw, s, p.row_rows, p.pitch, geo.kh, p.chunks, C) // row_elems))
        load = functools.partial(self._load_input, islot, y0 * s, x0=x0 * s, cols=cols)
        loads = [load(0, head_rows, p.in_slot_rows)]
        if head_rows < in_rows:
            loads = [load(0, head_rows, head_rows * p.row_rows),
                     load(head_rows, in_rows - head_rows,
                          p.in_slot_rows - head_rows * p.row_rows)]
        return {"islot": islot, "in_fp": (Space.NBIN, islot * in_beats,
                                          p.in_slot_rows * in_beats),
                "head": head, "head_rows": head_rows, "loads": loads}

    def _store(self, y0, x0, ty, tw, g, nb, oslot, out_fp):
        cfg, out = self.config, self.out
        R, V = cfg.pe_rows, cfg.beat_elems
        out_beats = cfg.nbout_row_elems // V
        first_ch = self.channel + g * self.plan.nb * R
        lanes = min(nb * R, -(-self.cout // V) * V - g * self.plan.nb * R)
        dram = out.beat(y0, x0, first_ch)
        span = ((ty - 1) * out.row_pitch_beats + (tw - 1) * out.pixel_beats + lanes // V)
        return dma_task("store", Buf.NBOUT,
            dram_addr=dram, buf_addr=oslot * out_beats, planes=ty, rows=tw,
            row_beats=lanes // V, dram_stride=out.pixel_beats, buf_stride=nb * out_beats,
            dram_plane_stride=out.row_pitch_beats, buf_plane_stride=tw * nb * out_beats,
            reads=(out_fp,), writes=((Space.DRAM, dram, span),))
