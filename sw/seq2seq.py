"""Sequence to sequence (the paper's Fig.10): one encoder and one decoder layer of a recurrent
cell (:mod:`.cells`), over sentence pairs whose lengths are known only at run time.

Sentence ``b`` has an encoder length ``Le`` and a decoder length ``Ld`` (1 .. ``max_length``
each). The encoder runs its ``Le`` inputs from a zero state; the decoder starts from the
encoder's last state and runs its ``Ld`` inputs (teacher forcing: the inputs are given).
Every step writes a *record* to DRAM: ``[h | c (LSTM) | gates (LSTM, GRU)]``.

Layout. A sentence has ``2 * max_length`` positions: its encoder inputs sit at the end of the
first half (positions ``max_length - Le`` .. ``max_length - 1``, the host left-pads them),
its decoder inputs at the start of the second. The record of position ``p`` has index ``p +
1``; the one before the first real step is zero. So a step always reads the state of the
record before its own, across the encoder / decoder boundary too.

Execution. The machine works on ``K`` sentences at once, one per *slot* (NBin and NBout areas
of its own); the weights stay in SB when both layers fit, and stream from DRAM one gate at a
time (two SB halves) when not. A step is these tasks (IO, PFU, Store):

    load_in: x_t and h_{t-1} -> NBin     gates: one CONV per gate -> NBout
    store_gates: gates -> the record     load_gates: gates (and c_{t-1}) -> NBin
    elt: the cell's vector operations    store_out: h_t (and c_t) -> the record

(an RNN's one gate is its output: its steps are the first three tasks). Streaming weights, a
``load_w`` and ``gate`` task per gate replace ``gates``.

* DyPipe reads each pair of lengths from DRAM at run time; a slot whose sentence ends takes
  the next one at once. Exactly ``sum(Le + Ld)`` steps run.
* Static pipelining is fixed at compile time: every sentence runs ``max_length`` encoder and
  ``max_length`` decoder steps. Its encoder steps read a mask ``m`` (0 at the first real step,
  1.0 after it) from the input record and multiply the previous state by it, which restarts the
  left-padded sentence from zero exactly; padded decoder steps write records nobody reads.
* NonePipe: the DyPipe program with every task a barrier.
"""

import numpy as np

from .cells import CELLS, VecOp, cell_step, padded, random_cell_weights
from .fc import block_weights, barrier, footprint
from .functions import PARAM_BLOCK
from .image import DramImage
from .isa import Buf, Unit, Space, VecFn, CONV_PARAMS, VEC_PARAMS
from .program import ProgramBuilder, Reg, module_function, ARG
from .roofline import roofline
from .schedule import emit
from .slots import FIRST_SLOT_REG, SLOT_REGS, slot_rounds
from .workload import Workload, CompileError, MODES

__all__ = ["compile_seq2seq", "random_seq2seq", "SLOTS"]

#: Sentences in flight at once (fewer when the templates or registers do not allow it).
SLOTS = 4
#: The control program keeps four registers a slot.
_MAX_SLOTS = SLOT_REGS // 4


class _Plan:
    """Sizes and places: NBin, NBout and SB areas, DRAM record layout."""

    def __init__(self, config, cell, hidden, inputs, slots, streamed):
        R, C, V = config.pe_rows, config.pe_cols, config.beat_elems
        self.cell, self.R, self.C, self.V = cell, R, C, V
        self.hp, self.ep = hp, ep = padded(hidden, config), padded(inputs, config)
        self.rows_h, self.rows_x = hp // C, ep // C            # NBin rows of a vector
        self.blocks_h = hp // R                                 # NBout rows of a vector
        self.beats_h, self.beats_x = hp // V, ep // V
        self.nbin_bpr, self.nbout_bpr = C // V, R // V          # beats per row
        k = {"xh": ep + hp, "x": ep, "h": hp}
        self.kc = {g.name: k[g.part] // C for g in cell.gates}
        self.src = {g.name: (ep if g.part == "h" else 0) for g in cell.gates}   # elements
        self.sb_rows = {g.name: self.blocks_h * self.kc[g.name] for g in cell.gates}
        off, self.sb_off = 0, {}
        for g in cell.gates:
            self.sb_off[g.name], off = off, off + self.sb_rows[g.name]
        self.layer_sb_rows = off
        n_gates = len(cell.gates)
        self.stream = streamed
        if self.stream:
            self.half = max(self.sb_rows.values())
            if 2 * self.half > config.sb_rows:
                raise CompileError(f"{cell.name}: a gate's weights take {self.half} SB rows; "
                                   f"streaming needs two such halves, SB has {config.sb_rows}")
        elif 2 * off > config.sb_rows:
            raise CompileError(f"{cell.name}: both layers' weights take {2 * off} SB rows, "
                               f"SB has {config.sb_rows}")
        # DRAM records: [h | c | gates].
        self.outs = len(cell.outputs)
        self.gates_off = 0 if not cell.ops else hp * self.outs     # elements into a record
        self.rec = hp * (self.outs + (n_gates if cell.ops else 0))
        self.rec_beats = self.rec // V
        self.xrec = hp + ep                                         # [m | x]
        self.xrec_beats = self.xrec // V
        # NBin area of a slot (rows): inputs [m x h hraw] (an input record lands as [m x], the
        # CONVs read [x h]), then the vector operations'.
        names = ["m", "x", "h", "hraw"]
        sizes = [self.rows_h, self.rows_x, self.rows_h, self.rows_h]
        if cell.ops:
            elt = [g.name for g in cell.gates] + (["c"] if cell.has_c else [])
            elt += [n for n in ("cm",) if cell.has_c]
            elt += list(cell.temporaries) + list(cell.outputs)
            elt = list(dict.fromkeys(elt))
            names += elt
            sizes += [self.rows_h] * len(elt)
        self.row = {}
        r = 0
        for n, s in zip(names, sizes):
            self.row[n], r = r, r + s
        self.in_rows = self.row["hraw"] + self.rows_h            # m, x, h, hraw
        self.elt_first = self.in_rows
        self.slot_rows = r
        self.minus_one_row = slots * r
        nbin_need = slots * r + (self.rows_h if cell.needs_minus_one else 0)
        self.gate_blocks = n_gates * self.blocks_h                 # NBout rows of a slot
        self.bias_row = slots * self.gate_blocks                    # both layers' biases
        nbout_need = self.bias_row + 2 * self.gate_blocks
        if nbin_need > config.nbin_rows or nbout_need > config.nbout_rows:
            raise CompileError(f"seq2seq-{cell.name}: {slots} slots need {nbin_need} NBin and "
                               f"{nbout_need} NBout rows; there are {config.nbin_rows} and "
                               f"{config.nbout_rows}")


def _functions(p, tag):
    """The module functions of a step, with this workload's sizes built in (``tag`` names
    them apart from other workloads')."""
    cell = p.cell
    nb = p.nbin_bpr
    x_beats, h_beats = p.beats_x, p.beats_h
    fns = {}

    @module_function(Unit.IO, "x_dram", "h_dram", "nbin", name=f"{tag}_load_in")
    def load_in(f, q):
        """x (past the mask in its input record) and h_{t-1}."""
        f.emit(f"addi r1, {q.nbin}, {p.row['x'] * nb}")
        f.emit(f"addi r{PARAM_BLOCK}, {q.x_dram}, {h_beats}")
        f.dload_span(Buf.NBIN, Reg(PARAM_BLOCK), Reg(1), x_beats)
        f.emit(f"addi r1, {q.nbin}, {p.row['h'] * nb}")
        f.dload_span(Buf.NBIN, q.h_dram, Reg(1), h_beats)
    fns["load_in"] = load_in

    @module_function(Unit.IO, "x_dram", "h_dram", "nbin", name=f"{tag}_load_in_masked")
    def load_in_masked(f, q):
        """The input record [m | x], and h_{t-1} aside (``hraw``) to be masked."""
        f.dload_span(Buf.NBIN, q.x_dram, q.nbin, p.xrec_beats)
        f.emit(f"addi r1, {q.nbin}, {p.row['hraw'] * nb}")
        f.dload_span(Buf.NBIN, q.h_dram, Reg(1), h_beats)
    fns["load_in_masked"] = load_in_masked

    def vec_block(f):
        """The VEC parameters all operations share: whole vectors, one pixel."""
        fixed = dict(chunks=p.rows_h, kh=1, kw=1, x_count=1, y_count=1)
        for i, name in enumerate(VEC_PARAMS[3:], start=3):
            f.li(Reg(PARAM_BLOCK + i), fixed.get(name, 0))

    def vec(f, row, op, place):
        """One vector operation; ``place`` maps a vector name to its row (relative to the
        slot's ``row`` register, or absolute as ``("abs", row)``)."""
        for i, name in enumerate((op.dst, op.a, op.b or op.a)):
            where = place(name)
            if isinstance(where, tuple):
                f.li(Reg(PARAM_BLOCK + i), where[1])
            else:
                f.emit(f"addi r{PARAM_BLOCK + i}, {row}, {where}")
        f.vec(Reg(PARAM_BLOCK), op.fn, op.act)

    def place(name):
        if name == "minus_one":
            return ("abs", p.minus_one_row)
        return p.row[name]

    def conv_block(f):
        fixed = dict(kh=1, x_count=1, y_count=1)
        for i, name in enumerate(CONV_PARAMS[6:], start=6):
            f.li(Reg(PARAM_BLOCK + i), fixed.get(name, 0))
        f.li(Reg(PARAM_BLOCK + 4), p.blocks_h)

    def conv(f, q, gate, weights):
        """One gate: ``weights`` is a register plus an offset, or an absolute SB row."""
        g = [i for i, x in enumerate(cell.gates) if x.name == gate.name][0]
        r = lambda i: f"r{PARAM_BLOCK + i}"     # noqa: E731
        f.emit(f"addi {r(0)}, {q.nbout}, {g * p.blocks_h}")
        f.emit(f"addi {r(1)}, {q.el}, {p.src[gate.name]}")
        if isinstance(weights, tuple):
            f.emit(f"addi {r(2)}, {weights[0]}, {weights[1]}")
        else:
            f.li(Reg(PARAM_BLOCK + 2), weights)
        f.li(Reg(PARAM_BLOCK + 3), p.kc[gate.name])
        f.emit(f"addi {r(5)}, {q.b}, {g * p.blocks_h}")
        f.conv(Reg(PARAM_BLOCK), bias=True, act=gate.act)

    def mask_h(f, q):
        vec_block(f)
        vec(f, q.row, VecOp("h", VecFn.MUL, "hraw", "m"), place)

    for masked in (False, True):
        @module_function(Unit.PFU, "row", "el", "nbout", "w", "b",
                         name=f"{tag}_gates{'_masked' if masked else ''}")
        def gates(f, q, masked=masked):
            if masked:
                mask_h(f, q)
            conv_block(f)
            for gate in cell.gates:
                conv(f, q, gate, (q.w, p.sb_off[gate.name]))
        fns["gates_masked" if masked else "gates"] = gates

        for gi, gate in enumerate(cell.gates):
            @module_function(Unit.PFU, "row", "el", "nbout", "b",
                             name=f"{tag}_gate_{gate.name}{'_masked' if masked else ''}")
            def one_gate(f, q, gate=gate, gi=gi, masked=masked):
                if masked and gi == 0:
                    mask_h(f, q)
                conv_block(f)
                conv(f, q, gate, (gi % 2) * p.half if p.stream else 0)
            fns[("gate", gate.name, masked)] = one_gate

    if p.stream:
        for gi, gate in enumerate(cell.gates):
            beats = p.sb_rows[gate.name] * p.R * p.C // p.V

            @module_function(Unit.IO, "w_dram", name=f"{tag}_load_w_{gate.name}")
            def load_w(f, q, beats=beats, gi=gi):
                f.dload_span(Buf.SB, q.w_dram, (gi % 2) * p.half * p.R * p.C // p.V, beats)
            fns[("load_w", gate.name)] = load_w

    n_gate_beats = len(cell.gates) * p.beats_h if cell.ops else p.beats_h

    @module_function(Unit.STORE, "nbout", "rec", name=f"{tag}_store_gates")
    def store_gates(f, q):
        f.emit(f"addi r1, {q.rec}, {p.gates_off // p.V}")
        f.dstore_span(Buf.NBOUT, Reg(1), q.nbout, n_gate_beats)
    fns["store_gates"] = store_gates

    if cell.ops:
        first_gate = p.row[cell.gates[0].name]

        @module_function(Unit.IO, "nbin", "rec", name=f"{tag}_load_gates")
        def load_gates(f, q):
            f.emit(f"addi r1, {q.rec}, {p.gates_off // p.V}")
            f.emit(f"addi r{PARAM_BLOCK}, {q.nbin}, {first_gate * nb}")
            f.dload_span(Buf.NBIN, Reg(1), Reg(PARAM_BLOCK), n_gate_beats)
            if cell.has_c:      # c_{t-1}: the record before, after its h
                f.emit(f"addi r1, {q.rec}, {p.beats_h - p.rec_beats}")
                f.emit(f"addi r{PARAM_BLOCK}, {q.nbin}, {p.row['c'] * nb}")
                f.dload_span(Buf.NBIN, Reg(1), Reg(PARAM_BLOCK), h_beats)
        fns["load_gates"] = load_gates

        for masked in (False, True):
            ops = cell.masked_ops() if masked else cell.ops

            @module_function(Unit.PFU, "row", name=f"{tag}_elt{'_masked' if masked else ''}")
            def elt(f, q, ops=ops):
                vec_block(f)
                for op in ops:
                    vec(f, q.row, op, place)
            fns["elt_masked" if masked else "elt"] = elt

        @module_function(Unit.STORE, "nbin", "rec", name=f"{tag}_store_out")
        def store_out(f, q):
            f.emit(f"addi r1, {q.nbin}, {p.row[cell.outputs[0]] * nb}")
            f.dstore_span(Buf.NBIN, q.rec, Reg(1), p.outs * h_beats)
        fns["store_out"] = store_out
    return fns


def compile_seq2seq(config, cell_name, enc_x, dec_x, lengths, weights, *, hidden, inputs,
                    max_length=20, slots=SLOTS, stream=None, mode="dypipe", name=None):
    """``enc_x``, ``dec_x``: (B, max_length, inputs) int16 inputs (only the first ``Le`` /
    ``Ld`` steps of each matter); ``lengths``: B pairs ``(Le, Ld)``; ``weights``: per layer
    (encoder, decoder) the :func:`.cells.random_cell_weights` dict over padded sizes.
    ``stream``: force weights to stream from DRAM (True) or stay in SB (False); by default
    they stream when both layers do not fit."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if cell_name not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, not {cell_name!r}")
    cell = CELLS[cell_name]
    name = name or f"seq2seq-{cell_name}"
    lengths = [(int(a), int(b)) for a, b in lengths]
    if not all(1 <= n <= max_length for pair in lengths for n in pair):
        raise ValueError(f"lengths must be in 1..{max_length}, got {lengths}")
    n_sent, L = len(lengths), max_length
    # Every template of the loop stays defined: a slot needs one per task of a step (the
    # weight loads of streamed gates are shared).
    streamed = _streamed(config, cell, hidden, inputs, stream)
    n_gates = len(cell.gates)
    per_slot = 2 + (n_gates if streamed else 1) + (3 if cell.ops else 0)
    shared = n_gates if streamed else 0
    slots = max(1, min(slots, n_sent, (config.templates - shared) // per_slot, _MAX_SLOTS))
    p = _Plan(config, cell, hidden, inputs, slots, streamed)
    V, hp = p.V, p.hp

    # -- DRAM -----------------------------------------------------------------------------
    image = DramImage(config)
    w_dram, b_all = [], np.zeros(2 * len(cell.gates) * hp, dtype=np.int16)
    for layer in range(2):
        blocks = [block_weights(weights[layer][g.name][0], p.R, p.C) for g in cell.gates]
        w_dram.append(image.alloc(f"w{layer}", sum(b.size for b in blocks),
                                  np.concatenate(blocks)))
        for gi, g in enumerate(cell.gates):
            b_all[(layer * len(cell.gates) + gi) * hp:][:hp] = weights[layer][g.name][1]
    rbias = image.alloc("bias", b_all.size, b_all)
    xs = np.zeros((n_sent, 2 * L, p.xrec), dtype=np.int16)
    one = 1 << config.frac_bits
    for b, (le, ld) in enumerate(lengths):
        xs[b, L - le:L, hp:hp + inputs] = enc_x[b, :le]
        xs[b, L - le + 1:L, :hp] = one                  # the mask: 0 at the first real step
        xs[b, L:L + ld, hp:hp + inputs] = dec_x[b, :ld]
    rx = image.alloc("x", xs.size, xs)
    rrec = image.alloc("rec", n_sent * (2 * L + 1) * p.rec)
    rlen = image.alloc("lengths", 4 * n_sent,
                       np.asarray(lengths, dtype="<i4").reshape(-1).view(np.int16))
    rm1 = image.alloc("minus_one", hp, np.full(hp, -one, np.int16)) if cell.needs_minus_one \
        else None
    x_sent, h_sent = 2 * L * p.xrec_beats, (2 * L + 1) * p.rec_beats

    # -- tasks ----------------------------------------------------------------------------
    fns = _functions(p, f"s2s_{cell_name}_{hidden}x{inputs}_{slots}{'s' if p.stream else ''}")
    fp = barrier if mode == "nonepipe" else footprint
    nbb, nob = p.nbin_bpr, p.nbout_bpr
    sb_beats_row = p.R * p.C // V
    weights_fp = (Space.SB, 0, 2 * p.layer_sb_rows * sb_beats_row)
    bias_fp = (Space.NBOUT, p.bias_row * nob, 2 * p.gate_blocks * nob)
    m1_fp = [(Space.NBIN, p.minus_one_row * nbb, p.rows_h * nbb)] if rm1 else []
    d_w = (w_dram[1].beat - w_dram[0].beat) if p.stream else p.layer_sb_rows
    d_b = p.gate_blocks

    pb = ProgramBuilder(config)
    from .functions import dma_task
    setup = []
    if not p.stream:
        setup.append(dma_task("load", Buf.SB, dram_addr=w_dram[0].beat, buf_addr=0,
                              row_beats=w_dram[0].beats + w_dram[1].beats,
                              writes=(weights_fp,)))
    setup.append(dma_task("load", Buf.NBOUT, dram_addr=rbias.beat, buf_addr=bias_fp[1],
                          row_beats=rbias.beats, writes=(bias_fp,)))
    if rm1:
        setup.append(dma_task("load", Buf.NBIN, dram_addr=rm1.beat, buf_addr=m1_fp[0][1],
                              row_beats=rm1.beats, writes=tuple(m1_fp)))
    for t in setup:
        emit(pb, [[t]], mode)

    def fields(k, kind, masked):
        """The template fields of task ``kind`` of slot ``k``: ARG[0] is the step's input
        record, ARG[1] its state record, ARG[2] / ARG[3] the layer's weights / bias offsets."""
        row = k * p.slot_rows
        nbin, nbout = row * nbb, k * p.gate_blocks
        el = (row + p.row["x"]) * p.C           # the CONVs' input [x h], in elements
        in_fp = (Space.NBIN, nbin, p.in_rows * nbb)
        elt_fp = (Space.NBIN, (row + p.elt_first) * nbb, (p.slot_rows - p.elt_first) * nbb)
        gates_fp = (Space.NBOUT, nbout * nob, p.gate_blocks * nob)
        x, rec = ARG[0], ARG[1]
        prev = rec - p.rec_beats
        if kind == "load_in":
            return fns["load_in_masked" if masked else "load_in"], dict(
                x_dram=x, h_dram=prev, nbin=nbin,
                **fp(reads=[(Space.DRAM, prev, p.beats_h)], writes=[in_fp]))
        if kind == "gates":
            return fns["gates_masked" if masked else "gates"], dict(
                row=row, el=el, nbout=nbout, w=ARG[2], b=ARG[3] + p.bias_row,
                **fp(reads=[weights_fp, bias_fp] + ([] if masked else [in_fp]),
                     writes=[gates_fp] + ([in_fp] if masked else [])))
        if kind[0] == "gate":
            gi = kind[1]
            g = cell.gates[gi]
            half = (Space.SB, (gi % 2) * p.half * sb_beats_row, p.sb_rows[g.name] * sb_beats_row)
            mask_first = masked and gi == 0
            return fns[("gate", g.name, mask_first)], dict(
                row=row, el=el, nbout=nbout, b=ARG[3] + p.bias_row,
                **fp(reads=[half, bias_fp] + ([] if mask_first else [in_fp]),
                     writes=[(Space.NBOUT, (nbout + gi * p.blocks_h) * nob, p.blocks_h * nob)]
                     + ([in_fp] if mask_first else [])))
        if kind[0] == "load_w":
            gi = kind[1]
            g = cell.gates[gi]
            half = (Space.SB, (gi % 2) * p.half * sb_beats_row, p.sb_rows[g.name] * sb_beats_row)
            return fns[("load_w", g.name)], dict(
                w_dram=ARG[2] + (w_dram[0].beat + p.sb_off[g.name] * sb_beats_row),
                **fp(writes=[half]))
        g_rec = rec + p.gates_off // V
        n_gate_beats = len(cell.gates) * p.beats_h if cell.ops else p.beats_h
        if kind == "store_gates":
            return fns["store_gates"], dict(
                nbout=nbout * nob, rec=rec,
                **fp(reads=[gates_fp], writes=[(Space.DRAM, g_rec, n_gate_beats)]))
        if kind == "load_gates":
            reads = [(Space.DRAM, g_rec, n_gate_beats)]
            if cell.has_c:
                reads.append((Space.DRAM, prev + p.beats_h, p.beats_h))
            return fns["load_gates"], dict(nbin=nbin, rec=rec, **fp(reads=reads,
                                                                    writes=[elt_fp]))
        if kind == "elt":
            return fns["elt_masked" if masked else "elt"], dict(
                row=row, **fp(reads=[in_fp] + m1_fp, writes=[elt_fp]))
        if kind == "store_out":
            out = (Space.NBIN, (row + p.row[cell.outputs[0]]) * nbb, p.outs * p.rows_h * nbb)
            return fns["store_out"], dict(
                nbin=nbin, rec=rec, **fp(reads=[out], writes=[(Space.DRAM, rec,
                                                               p.outs * p.beats_h)]))
        raise AssertionError(kind)

    part_a = ["load_in"]
    if p.stream:
        for gi in range(len(cell.gates)):
            part_a += [("load_w", gi), ("gate", gi)]
    else:
        part_a.append("gates")
    part_a.append("store_gates")
    part_b = ["load_gates", "elt", "store_out"] if cell.ops else []
    masked_kinds = {"load_in", "gates", ("gate", 0)} | ({"elt"} if cell.has_c else set())

    templates = {}

    def spawn(k, kind, masked, regs):
        masked = masked and kind in masked_kinds
        shared = isinstance(kind, tuple) and kind[0] == "load_w"
        key = (None if shared else k, kind, masked)
        t = templates.get(key)
        if t is None or not pb.holds(t):
            fn, params = fields(k, kind, masked)
            t = templates[key] = pb.define(fn, **params)
        pb.spawn(t, *regs[:t.operands])

    def define_slot(k):
        for kind in part_a + part_b:
            key = (None if isinstance(kind, tuple) and kind[0] == "load_w" else k, kind, False)
            if key not in templates:
                fn, params = fields(k, kind, False)
                templates[key] = pb.define(fn, **params)

    x_base, h_base = rx.beat, rrec.beat
    if mode == "static":
        xr = [Reg(FIRST_SLOT_REG + 4 * k) for k in range(slots)]
        hr = [Reg(FIRST_SLOT_REG + 1 + 4 * k) for k in range(slots)]
        a2, a3 = Reg(5), Reg(6)
        for rnd in range(-(-n_sent // slots)):
            for pos in range(2 * L):
                active = [k for k in range(slots) if rnd * slots + k < n_sent]
                enc = pos < L
                pb.li(a2, 0 if enc else d_w)
                pb.li(a3, 0 if enc else d_b)
                for k in active:
                    b = rnd * slots + k
                    pb.li(xr[k], x_base + b * x_sent + pos * p.xrec_beats)
                    pb.li(hr[k], h_base + b * h_sent + (pos + 1) * p.rec_beats)
                    for kind in part_a:
                        spawn(k, kind, enc, (xr[k], hr[k], a2, a3))
                for k in active:
                    for kind in part_b:
                        spawn(k, kind, enc, (xr[k], hr[k], a2, a3))
                pb.boundary()
    else:
        with pb.atomic():
            _dynamic(pb, p, slots, n_sent, L, spawn, define_slot, part_a, part_b, x_base,
                     x_sent, h_base, h_sent, rlen.beat * config.beat_words, d_w, d_b)
    pb.halt()

    # -- golden -----------------------------------------------------------------------------
    expected = np.zeros((n_sent, 2 * L + 1, p.rec), dtype=np.int16)
    compare = np.zeros_like(expected, dtype=bool)
    for b, (le, ld) in enumerate(lengths):
        h = np.zeros(hp, dtype=np.int16)
        c = np.zeros(hp, dtype=np.int16) if cell.has_c else None
        for pos in range(L - le, L + ld):
            layer = 0 if pos < L else 1
            x = xs[b, pos, hp:]
            h, c, gates = cell_step(cell, config, weights[layer], x, h, c)
            r = expected[b, pos + 1]
            r[:hp] = h
            if cell.has_c:
                r[hp:2 * hp] = c
            if cell.ops:
                for gi, g in enumerate(cell.gates):
                    r[p.gates_off + gi * hp:][:hp] = gates[g.name]
            compare[b, pos + 1, :p.outs * hp] = True

    steps_real = sum(le + ld for le, ld in lengths)
    per_step = cell.weight_elems(hidden, inputs)
    macs = steps_real * per_step
    compulsory = 2 * (2 * (per_step + len(cell.gates) * hidden)
                      + steps_real * (inputs + hidden))
    meta = {"layer": "seq2seq", "cell": cell_name, "hidden": hidden, "inputs": inputs,
            "lengths": [list(pair) for pair in lengths], "max_length": L, "sentences": n_sent,
            "slots": slots, "weights_stream": p.stream,
            "streamed_bytes": (2 * (2 * L * n_sent if mode == "static" else steps_real)
                               * p.layer_sb_rows * p.R * p.C if p.stream else 0),
            "steps": steps_real if mode != "static" else 2 * L * n_sent,
            "padded_work_ratio": round(2 * L * n_sent / steps_real, 4), "macs": macs,
            "compulsory_bytes": compulsory,
            "roofline_cycles": roofline(config, macs, compulsory)}
    return Workload(name=name, mode=mode, config=config,
                    program=pb.assemble(f"<{name}>", image=image), image=image,
                    expected={"rec": expected.reshape(-1)},
                    compare={"rec": compare.reshape(-1)}, meta=meta)


def _streamed(config, cell, hidden, inputs, stream):
    """Whether the weights stream: ``stream`` if given, else when both layers do not fit SB."""
    if stream is not None:
        return bool(stream)
    elems = cell.weight_elems(padded(hidden, config), padded(inputs, config))
    return 2 * elems > config.sb_rows * config.pe_rows * config.pe_cols


def _dynamic(pb, p, slots, n_sent, L, spawn, define_slot, part_a, part_b, x_base, x_sent,
             h_base, h_sent, len_word, d_w, d_b):
    """The run-time control program: K slots, each walking its sentence's steps and taking the
    next sentence (its lengths read from DRAM) when it ends. A slot keeps its input record
    ``x``, its state record ``h``, where the decoder starts (``dec``) and where the sentence
    ends (``end``; 0 when idle). Round ``r < K`` (unrolled) defines slot r's templates and
    assigns its first sentence, so that the first tasks start at once."""
    nxt, any_, tmp, a2, a3 = Reg(2), Reg(3), Reg(4), Reg(5), Reg(6)
    x, h, end, dec = ([Reg(FIRST_SLOT_REG + 4 * k + i) for k in range(slots)]
                      for i in range(4))

    def assign(k):
        idle, done = pb.fresh_label("idle"), pb.fresh_label("assigned")
        pb.li(tmp, n_sent)
        pb.emit(f"bge {nxt}, {tmp}, {idle}")
        pb.li(tmp, 2)
        pb.emit(f"mul {tmp}, {nxt}, {tmp}")
        pb.li(a2, len_word)
        pb.emit(f"add {tmp}, {tmp}, {a2}")
        pb.emit(f"lw {a2}, 0({tmp})")                 # Le
        pb.emit(f"lw {a3}, 1({tmp})")                 # Ld
        # x = x_base + nxt * x_sent + (L - Le) * xrec
        pb.li(tmp, x_sent)
        pb.emit(f"mul {x[k]}, {nxt}, {tmp}")
        pb.li(tmp, x_base + L * p.xrec_beats)
        pb.emit(f"add {x[k]}, {x[k]}, {tmp}")
        pb.li(tmp, p.xrec_beats)
        pb.emit(f"mul {tmp}, {a2}, {tmp}")
        pb.emit(f"sub {x[k]}, {x[k]}, {tmp}")
        # dec = h_base + nxt * h_sent + (L + 1) * rec;  h = dec - Le * rec
        pb.li(tmp, h_sent)
        pb.emit(f"mul {dec[k]}, {nxt}, {tmp}")
        pb.li(tmp, h_base + (L + 1) * p.rec_beats)
        pb.emit(f"add {dec[k]}, {dec[k]}, {tmp}")
        pb.li(tmp, p.rec_beats)
        pb.emit(f"mul {a2}, {a2}, {tmp}")
        pb.emit(f"sub {h[k]}, {dec[k]}, {a2}")
        pb.emit(f"mul {a3}, {a3}, {tmp}")
        pb.emit(f"add {end[k]}, {dec[k]}, {a3}")
        pb.emit(f"addi {nxt}, {nxt}, 1")
        pb.emit(f"j {done}")
        pb.label(idle)
        pb.li(end[k], 0)
        pb.label(done)

    def step_a(k):
        skip = pb.fresh_label("skip")
        pb.emit(f"beq {end[k]}, r0, {skip}")
        pb.emit(f"slt {tmp}, {h[k]}, {dec[k]}")       # 1 in the encoder
        pb.emit(f"addi {tmp}, {tmp}, -1")             # 0 in the encoder, -1 in the decoder
        pb.li(a2, -d_w)
        pb.emit(f"mul {a2}, {a2}, {tmp}")
        pb.li(a3, -d_b)
        pb.emit(f"mul {a3}, {a3}, {tmp}")
        for kind in part_a:
            spawn(k, kind, False, (x[k], h[k], a2, a3))
        pb.label(skip)

    def step_b(k):
        skip = pb.fresh_label("skip")
        pb.emit(f"beq {end[k]}, r0, {skip}")
        for kind in part_b:
            spawn(k, kind, False, (x[k], h[k], a2, a3))
        pb.emit(f"addi {x[k]}, {x[k]}, {p.xrec_beats}")
        pb.emit(f"addi {h[k]}, {h[k]}, {p.rec_beats}")
        pb.li(any_, 1)
        pb.emit(f"blt {h[k]}, {end[k]}, {skip}")
        assign(k)
        pb.label(skip)

    def join(r):
        define_slot(r)
        assign(r)

    def step(ks):
        for k in ks:
            step_a(k)
        for k in ks:
            step_b(k)

    pb.li(nxt, 0)
    slot_rounds(pb, slots, any_, join, step)


def random_seq2seq(config, cell, *, sentences=16, hidden=8, inputs=None, max_length=20,
                   seed=0, mode="dypipe", slots=SLOTS, stream=None, name=None):
    """Random inputs and weights; encoder and decoder lengths drawn independently and
    uniformly from 1..max_length with ``seed``."""
    inputs = hidden if inputs is None else inputs
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, not {cell!r}")
    rng = np.random.default_rng(seed)
    one = 1 << config.frac_bits
    lengths = rng.integers(1, max_length + 1, (sentences, 2))
    enc_x = rng.integers(-one, one, (sentences, max_length, inputs), dtype=np.int16)
    dec_x = rng.integers(-one, one, (sentences, max_length, inputs), dtype=np.int16)
    weights = [random_cell_weights(CELLS[cell], config, hidden, inputs, rng) for _ in range(2)]
    return compile_seq2seq(config, cell, enc_x, dec_x, lengths, weights, hidden=hidden,
                           inputs=inputs, max_length=max_length, slots=slots, stream=stream,
                           mode=mode, name=name)
