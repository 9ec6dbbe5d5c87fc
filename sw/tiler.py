"""The tiler: how a layer is cut to the global buffer of a configuration.

For a convolution the input sits in NBin with pixels packed back to back (``cpitch`` elements
apart), so a kernel row's ``kw * cpitch`` values are one span of ``ceil(kw * cpitch / C)``
C-wide chunks, starting at any lane (the conv engine reads NBin by elements). It chooses

* the output rows per tile ``ty`` (the input tile holds ``(ty - 1) * s + kh`` rows), and the
  output columns per tile ``tw``: whole rows, unless not even one whole output row fits;
* the output blocks (of R channels) per group ``nb``;
* the loop order: tiles outer (each input tile loads once; weights that do not all stay in SB
  load once per tile) or groups outer (each group's weights load once; the input once per
  group);

so that every buffer is double buffered where the layer has more than one tile or group (single
buffered where two tiles do not fit) and the estimated cycles, max(compute, DRAM) plus the
pipeline's fill and drain, are least. Weight sets too large for two SB slots take two
overlapping slots, one at each end of SB: a set's rows outside the other slot load while the
other set computes, only the shared rows wait. A layer no choice fits gets a
:class:`CompileError` that says what the smallest tiling needs.
"""

import dataclasses

from .workload import CompileError

__all__ = ["ConvPlan", "plan_conv", "input_extent", "PoolPlan", "plan_pool"]

#: Cycles an instruction costs besides its rows (check, pipeline drain).
_INSN_OVERHEAD = 10


def _ceil(a, b):
    return -(-a // b)


@dataclasses.dataclass(frozen=True)
class ConvPlan:
    pitch: int            # elements per pixel in NBin
    row_rows: int         # NBin rows per input image row of a full-width tile
    chunks: int           # C-wide chunks per kernel row
    ty: int               # output rows per tile
    tw: int               # output columns per tile
    nb: int               # output blocks per group
    groups_outer: bool    # groups in the outer loop: each group's weights load once, and
                          # the input tiles load once per group (else tiles outer)
    blocks: int           # output blocks in all
    resident: bool        # all weights stay in SB (loaded once)
    w_slots: int          # SB ring slots (when not resident): 2 or 3; 1: two overlapping slots
    w_slot_rows: int
    in_slots: int
    in_slot_rows: int
    out_slots: int
    out_slot_rows: int
    estimate: int         # cycles, the tiler's own estimate

    @property
    def set_rows(self):
        """SB rows of the weights of a full group."""
        return self.nb * self.chunks


def input_extent(ty, tw, s, row_rows, pitch, kh, chunks, C):
    """NBin elements a tile of ``ty`` x ``tw`` outputs reads, from its slot's start."""
    return ((ty - 1) * s * row_rows * C + (tw - 1) * s * pitch + (kh - 1) * row_rows * C
            + chunks * C)


def _widths(ow):
    """Tile widths to try: the whole row, then narrower tiles when no whole row fits."""
    seen = []
    for k in range(1, ow + 1):
        tw = _ceil(ow, k)
        if tw not in seen:
            seen.append(tw)
    return seen


def plan_conv(config, name, *, wp, cpitch, cout, kh, kw, stride, oh, ow, out_cpitch):
    """The fastest :class:`ConvPlan` for a convolution over an input ``wp`` columns wide (halo
    included) whose pixels are ``cpitch`` elements apart."""
    best, smallest = None, None
    for tw in _widths(ow):
        for plan in _plans(config, wp, cpitch, cout, kh, kw, stride, oh, ow, out_cpitch, tw):
            if isinstance(plan, dict):
                smallest = smallest or plan
            elif best is None or (plan.estimate, plan.ty) < (best.estimate, best.ty):
                best = plan
        if best is not None:
            return best
    R = config.pe_rows
    what = ", ".join(f"{buf} needs {n} rows, has {have}"
                     for buf, (n, have) in (smallest or {}).items() if n > have)
    raise CompileError(f"{name}: no tiling fits the {config.name} configuration even at one "
                       f"output pixel and one block of {R} outputs: {what}")


def _plans(config, wp, pitch, cout, kh, kw, s, oh, ow, out_cpitch, tw):
    """Every plan with tiles ``tw`` output columns wide (a dict of what the smallest tile
    needs instead when nothing fits)."""
    R, C, V = config.pe_rows, config.pe_cols, config.beat_elems
    bpc = config.dram_bytes_per_cycle
    blocks = _ceil(cout, R)
    col_tiles = _ceil(ow, tw)
    in_cols = min(wp, (tw - 1) * s + kw)
    cols_read = sum(min(wp, (min(tw, ow - u * tw) - 1) * s + kw) for u in range(col_tiles))
    row_rows = _ceil(in_cols * pitch, C)
    chunks = _ceil(kw * pitch, C)
    for nb, groups_outer in ((nb, outer) for nb in range(1, blocks + 1)
                             for outer in (False, True)):
        groups = _ceil(blocks, nb)
        total_w_rows = blocks * kh * chunks
        resident = total_w_rows <= config.sb_rows
        if groups_outer and groups == 1:
            continue                    # the same as tiles outer
        w_slot_rows = nb * kh * chunks
        w_slots = min(3, config.sb_rows // w_slot_rows)
        if not resident and w_slots < 1:
            yield {"SB": (w_slot_rows, config.sb_rows)}
            continue
        for ty in range(1, oh + 1):
            tiles = _ceil(oh, ty) * col_tiles
            if groups_outer and tiles == 1:
                continue                # one tile: tiles outer loads it once
            in_rows = (ty - 1) * s + kh
            in_slot_rows = max(in_rows * row_rows, _ceil(input_extent(
                ty, tw, s, row_rows, pitch, kh, chunks, C), C))
            # Double buffered where two input tiles fit, else one (loads then wait).
            in_slots = 1 if tiles == 1 or 2 * in_slot_rows > config.nbin_rows else 2
            out_slot_rows = ty * tw * nb
            out_slots = 1 if tiles * groups == 1 else 2
            if out_slots * out_slot_rows + blocks > config.nbout_rows and out_slots == 2:
                out_slots = 1
            need = {"NBin": (in_slots * in_slot_rows, config.nbin_rows),
                    "NBout": (out_slots * out_slot_rows + blocks, config.nbout_rows)}
            if any(n > have for n, have in need.values()):
                if ty == 1:
                    yield need
                break
            # -- estimate ------------------------------------------------------------------
            compute = oh * ow * blocks * kh * chunks + tiles * groups * (_INSN_OVERHEAD + 4)
            in_beats = sum(((min(ty, oh - t * ty) - 1) * s + kh) * cols_read * pitch
                           for t in range(_ceil(oh, ty))) // V
            set_loads = 1 if resident or groups_outer else tiles
            w_beats = total_w_rows * R * C // V * set_loads
            if groups_outer:
                in_beats *= groups
            dram = in_beats + w_beats + (blocks * R + oh * ow * out_cpitch) // V
            fill = (in_rows * in_cols * pitch + w_slot_rows * R * C) * 2 // bpc
            fill += config.dram_latency
            drain = ty * tw * nb * R * 2 // bpc
            serial = 0
            if resident and not groups_outer:
                # The first tile needs every group's weights: they load while it computes.
                w_load = total_w_rows * R * C * 2 // bpc
                serial += max(0, w_load - compute // tiles - w_slot_rows * R * C * 2 // bpc)
            if not resident and w_slots == 1:       # the slots overlap: that part waits
                overlap = 2 * w_slot_rows - config.sb_rows
                serial += overlap * R * C * 2 // bpc * groups * set_loads
            if out_slots == 1 and tiles * groups > 1:
                serial += oh * ow * out_cpitch * 2 // bpc
            if in_slots == 1 and tiles > 1:
                serial += in_beats
            estimate = int(max(compute, dram) + fill + drain + serial)
            yield ConvPlan(pitch, row_rows, chunks, ty, tw, nb, groups_outer, blocks, resident,
                           w_slots, w_slot_rows, in_slots, in_slot_rows, out_slots,
                           out_slot_rows, estimate)


@dataclasses.dataclass(frozen=True)
class PoolPlan:
    chunks: int           # NBin rows per pixel (channel chunks in a tile)
    groups: int           # channel groups (tiles across channels)
    ty: int               # output rows per tile
    in_slot_rows: int
    mid_slot_rows: int    # separable: the row pass's results (0: one pass)
    out_slot_rows: int
    slots: int
    estimate: int

    @property
    def slot_rows(self):
        return self.in_slot_rows + self.mid_slot_rows + self.out_slot_rows


def plan_pool(config, name, *, hp, wp, cpitch, kh, kw, stride, oh, ow, passes=(1,)):
    """Tiles of a pooling layer: ``ty`` output rows by a group of channel chunks, input and
    output both in NBin, double buffered; the least estimated cycles win (channel groups avoid
    re-reading the rows two row tiles share). With 2 in ``passes`` (a max pool) it may also
    run as a pass along each input row (``1 x kw``, into NBin) and one down the columns of
    that (``kh x 1``): ``in_rows * kw + ty * kh`` reads a pixel instead of ``ty * kh * kw``."""
    C, V, bpc = config.pe_cols, config.beat_elems, config.dram_bytes_per_cycle
    total_chunks = _ceil(cpitch, C)
    best, smallest = None, None
    for split in [n == 2 for n in passes if n == 1 or (kh > 1 and kw > 1)]:
        for groups in range(1, total_chunks + 1):
            chunks = _ceil(total_chunks, groups)
            if _ceil(total_chunks, chunks) != groups:
                continue
            for ty in range(1, oh + 1):
                tiles = _ceil(oh, ty) * groups
                in_rows = (ty - 1) * stride + kh
                in_slot = in_rows * wp * chunks
                mid_slot = in_rows * ow * chunks if split else 0
                out_slot = ty * ow * chunks
                slot = in_slot + mid_slot + out_slot
                # Double buffered where two tiles fit, else one (loads then wait).
                slots = 1 if tiles == 1 or 2 * slot > config.nbin_rows else 2
                if slots * slot > config.nbin_rows:
                    if ty == 1:
                        smallest = smallest or slots * slot
                    break
                lanes = min(chunks * C, cpitch)
                in_beats = sum(((min(ty, oh - t * ty) - 1) * stride + kh) * wp
                               for t in range(_ceil(oh, ty))) * cpitch // V
                dram = in_beats + oh * ow * cpitch // V
                reads = ((in_rows * kw + ty * kh) * _ceil(oh, ty) if split
                         else oh * kh * kw)
                compute = (reads * ow * total_chunks
                           + tiles * (1 + split) * (_INSN_OVERHEAD + 4))
                fill = in_rows * wp * lanes * 2 // bpc + config.dram_latency
                drain = ty * ow * lanes * 2 // bpc
                estimate = max(dram, compute) + fill + drain
                if slots == 1 and tiles > 1:
                    estimate += dram
                key = (estimate, compute, tiles)     # a tie: the less vector unit time
                if best is None or key < best[0]:
                    best = (key, PoolPlan(chunks, groups, ty, in_slot, mid_slot, out_slot, slots,
                                          estimate))
    if best is None:
        raise CompileError(f"{name}: one output row of one channel chunk needs {smallest} NBin "
                           f"rows; the {config.name} configuration's NBin has "
                           f"{config.nbin_rows}")
    return best[1]
