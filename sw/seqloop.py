"""An RNN-style cell over sequences of run-time length (the paper's dynamic networks).

Each of ``B`` sequences ``b`` has a length ``L_b`` (drawn from 1..max_length with a fixed
seed). Its hidden state follows ``h_t = relu(Wx x_t + Wh h_{t-1} + b)`` with ``h_{-1} = 0``;
every ``h_t`` is written to DRAM.

The machine works on ``K`` sequences at once, one per *slot*: a slot owns NBin rows holding
``[x_t ; h_{t-1}]`` and NBout rows for ``h_t``; the weights ``[Wx Wh]`` stay in SB. Every
step of a slot is three tasks: IO loads ``x_t``, ``h_{t-1}`` (from DRAM) and the bias, PFU
computes ``h_t``, Store writes it to DRAM. Steps of different slots are independent, so the
dispatcher overlaps them; steps of one slot are chained through ``h``.

* DyPipe: the control program reads each length from DRAM at run time; a slot whose sequence
  ends takes the next sequence at once. Exactly ``sum(L_b)`` steps run.
* Static: the task list is fixed at compile time, so every sequence is padded to
  ``max_length`` steps (zero inputs past its end): ``B * max_length`` steps.
* NonePipe: the DyPipe program with every task a barrier.

Footprints name only ranges some task writes (the inputs, weights and bias are read-only and
cannot conflict).
"""

import numpy as np

from .fc import block_weights, dma_params, footprint, barrier, load_sb
from .golden import fc as golden_fc
from .image import DramImage
from .isa import Act, Buf, Unit, Space
from .program import ProgramBuilder, Reg, module_function, ARG, FOOTPRINT_REGS
from .roofline import roofline
from .slots import slot_rounds
from .workload import Workload, CompileError, MODES

__all__ = ["compile_seqloop", "random_seqloop"]


def _functions(x_beats, h_beats, bias_beat, bias_beats, kc, nbh):
    """The module functions of one step, with this workload's sizes built in."""

    @module_function(Unit.IO, "x_dram", "h_dram", "nbin", "nbout", name="rnn_load")
    def rnn_load(f, p):
        f.emit(f"addi r1, {p.nbin}, {x_beats}")     # r1: where h_{t-1} goes
        f.dload_span(Buf.NBIN, p.x_dram, p.nbin, x_beats)
        f.dload_span(Buf.NBIN, p.h_dram, Reg(1), h_beats)
        f.dload_span(Buf.NBOUT, bias_beat, p.nbout, bias_beats)

    mvm = [Reg(10 + i) for i in range(5)]                    # dst, src, weights, k, m

    @module_function(Unit.PFU, "dst", "src", name="rnn_cell")
    def rnn_cell(f, p):
        f.emit(f"addi {mvm[0]}, {p.dst}, 0")
        f.emit(f"addi {mvm[1]}, {p.src}, 0")
        f.li(mvm[2], 0)
        f.li(mvm[3], kc)
        f.li(mvm[4], nbh)
        f.mvm(mvm[0], bias=True, act=Act.RELU)

    @module_function(Unit.STORE, "h_dram", "nbout", name="rnn_store")
    def rnn_store(f, p):
        f.dstore_span(Buf.NBOUT, p.h_dram, p.nbout, bias_beats)

    return rnn_load, rnn_cell, rnn_store


def compile_seqloop(config, xs, lengths, wx, wh, bias, *, slots=4, max_length=20,
                    mode="dypipe", name="seqloop"):
    """``xs``: (B, max_length, X) inputs (only the first ``lengths[b]`` steps matter);
    ``wx``: (H, X), ``wh``: (H, H), ``bias``: (H,)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    xs = np.asarray(xs, dtype=np.int16)
    lengths = [int(n) for n in lengths]
    n_seq, _, n_x = xs.shape
    n_h = wx.shape[0]
    if not all(1 <= n <= max_length for n in lengths):
        raise ValueError(f"lengths must be in 1..{max_length}, got {lengths}")
    R, C, V = config.pe_rows, config.pe_cols, config.beat_elems
    kx, kh, nbh = -(-n_x // C), -(-n_h // C), -(-n_h // R)
    kc = kx + kh
    slot_nbin, slot_nbout = kc, nbh
    if slots * slot_nbin > config.nbin_rows or slots * slot_nbout > config.nbout_rows:
        raise CompileError(f"{name}: {slots} slots need {slots * slot_nbin} NBin and "
                           f"{slots * slot_nbout} NBout rows; there are {config.nbin_rows} and "
                           f"{config.nbout_rows}")
    if nbh * kc > config.sb_rows:
        raise CompileError(f"{name}: the weights need {nbh * kc} SB rows, there are "
                           f"{config.sb_rows}")
    nbin_bpr, nbout_bpr = C // V, R // V
    x_beats, h_beats = kx * nbin_bpr, kh * nbin_bpr
    h_step = -(-n_h // max(R, C)) * max(R, C)          # DRAM elements per stored h_t

    # Weights over the padded input [x (kx*C) ; h (kh*C)].
    w_full = np.zeros((n_h, kc * C), dtype=np.int16)
    w_full[:, :n_x] = wx
    w_full[:, kx * C:kx * C + n_h] = wh
    image = DramImage(config)
    xs_pad = np.zeros((n_seq, max_length, kx * C), dtype=np.int16)
    for b, n in enumerate(lengths):
        xs_pad[b, :n, :n_x] = xs[b, :n]
    rx = image.alloc("x", xs_pad.size, xs_pad)
    rw = image.alloc("w", nbh * kc * R * C, block_weights(w_full, R, C))
    b_pad = np.zeros(nbh * R, dtype=np.int16)
    b_pad[:n_h] = bias
    rb = image.alloc("b", b_pad.size, b_pad)
    # Each sequence's outputs are preceded by a zero "step -1", the h_{-1} its first step reads.
    if h_step < kh * C:
        raise CompileError(f"{name}: internal layout error ({h_step} < {kh * C})")
    rh = image.alloc("h", n_seq * (max_length + 1) * h_step)
    rlen = image.alloc("lengths", 2 * n_seq, np.asarray(lengths, dtype="<i4").view(np.int16))
    x_seq, x_step = max_length * x_beats, x_beats
    h_step_beats = h_step // V
    h_seq = (max_length + 1) * h_step_beats
    h_first = rh.beat + h_step_beats          # step 0 of sequence 0
    load, cell, store = _functions(x_beats, h_beats, rb.beat, nbh * nbout_bpr, kc, nbh)
    fp = barrier if mode == "nonepipe" else footprint
    w_beats = nbh * kc * (R * C // V)

    pb = ProgramBuilder(config)
    pb.task(load_sb, **dma_params(dram_addr=rw.beat, buf_addr=0, row_beats=w_beats),
            **fp(writes=[(Space.SB, 0, w_beats)]))

    kinds = (load, cell, store)

    def define(k, parts=(0, 1, 2)):
        """Templates of a step in slot ``k`` (``parts`` of load, cell, store): the step's input
        and output pointers (DRAM beats) are SPAWN operands a and b; h_{t-1} lies one output
        before h_t."""
        nbin_row, nbout_row = k * slot_nbin, k * slot_nbout
        nbin, nbout = nbin_row * nbin_bpr, nbout_row * nbout_bpr
        x_dram, h_dram = ARG[0], ARG[1]
        h_prev = h_dram - h_step_beats
        fields = (
            dict(x_dram=x_dram, h_dram=h_prev, nbin=nbin, nbout=nbout,
                 **fp(reads=[(Space.DRAM, h_prev, h_beats)],
                      writes=[(Space.NBIN, nbin, x_beats + h_beats),
                              (Space.NBOUT, nbout, nbh * nbout_bpr)])),
            dict(dst=nbout_row, src=nbin_row,
                 **fp(reads=[(Space.NBIN, nbin, x_beats + h_beats), (Space.SB, 0, w_beats)],
                      writes=[(Space.NBOUT, nbout, nbh * nbout_bpr)])),
            dict(h_dram=h_dram, nbout=nbout,
                 **fp(reads=[(Space.NBOUT, nbout, nbh * nbout_bpr)],
                      writes=[(Space.DRAM, h_dram, nbh * nbout_bpr)])))
        for part in parts:
            templates[k, part] = pb.define(kinds[part], **fields[part])

    templates = {}

    def step(k, x_dram, h_dram, parts=(0, 1, 2)):
        """Tasks of one step in slot ``k`` (``parts`` of load, cell, store): registers with its
        input and output pointers."""
        for part in parts:
            if (k, part) not in templates:
                define(k, (part,))
            pb.spawn(templates[k, part], x_dram, h_dram)

    if mode == "static":
        # Fixed at compile time: slot k runs sequences k, k + K, ... each for max_length steps.
        x_reg, h_reg = Reg(4), Reg(5)
        for t_global in range(-(-n_seq // slots) * max_length):
            rnd, t = divmod(t_global, max_length)
            for k in range(slots):
                b = rnd * slots + k
                if b >= n_seq:
                    continue
                pb.li(x_reg, rx.beat + b * x_seq + t * x_step)
                pb.li(h_reg, h_first + b * h_seq + t * h_step_beats)
                step(k, x_reg, h_reg)
                pb.boundary()
    else:
        with pb.atomic():               # branches and a loop: one overlay segment
            _dynamic_schedule(pb, step, define, slots, n_seq, rx.beat, x_seq, x_step, h_first,
                              h_seq, h_step_beats, rlen.beat * config.beat_words)
    pb.halt()

    # The golden model: the real steps of every sequence.
    expected_h = np.zeros((n_seq, max_length + 1, h_step), dtype=np.int16)
    x_pad_in = np.zeros(kc * C, dtype=np.int16)
    for b, n in enumerate(lengths):
        h = np.zeros(n_h, dtype=np.int16)
        for t in range(n):
            x_pad_in[:] = 0
            x_pad_in[:n_x] = xs[b, t]
            x_pad_in[kx * C:kx * C + n_h] = h
            h = golden_fc(x_pad_in, w_full, bias, config.frac_bits, Act.RELU, config.acc_bits)
            expected_h[b, t + 1, :n_h] = h
    masks = np.zeros_like(expected_h, dtype=bool)
    for b, n in enumerate(lengths):
        masks[b, :n + 1] = True          # the zero step -1 and the real steps
    workload = Workload(
        name=name, mode=mode, config=config, program=pb.assemble(f"<{name}>", image=image),
        image=image,
        expected={"h": expected_h.reshape(-1)}, compare={"h": masks.reshape(-1)},
        meta={"layer": "seqloop", "lengths": lengths, "max_length": max_length,
              "sequences": n_seq, "slots": slots, "hidden": n_h, "input": n_x,
              "steps": sum(lengths) if mode != "static" else n_seq * max_length,
              "padded_work_ratio": round(n_seq * max_length / sum(lengths), 4),
              "macs": sum(lengths) * n_h * (n_x + n_h)})
    real = int(sum(lengths))
    compulsory = 2 * (n_h * (n_x + n_h) + n_h + real * (n_x + n_h))
    workload.meta.update(compulsory_bytes=compulsory,
                         roofline_cycles=roofline(config, workload.meta["macs"], compulsory))
    return workload


def _dynamic_schedule(pb, step, define, slots, n_seq, x_base, x_seq, x_step, h_base, h_seq,
                      h_step, len_word):
    """The run-time control program: K slots, each walking its sequence's steps and taking the
    next sequence (its length read from DRAM) when it ends. A slot keeps three running
    pointers: ``x`` (this step's input), ``h`` (this step's output; the previous output, or the
    zero step -1, is just before it) and ``end`` (where its outputs stop; 0 when idle).

    The slots start one round apart: round ``r < K`` (unrolled) defines slot r's templates
    (``define(r)``) and assigns its first sequence, then steps slots 0..r. So the first
    tasks start at once, and the later slots are set up while the earlier ones run."""
    nxt, any_, tmp = Reg(2), Reg(3), Reg(4)
    x, h, end = ([Reg(5 + 3 * k + i) for k in range(slots)] for i in range(3))
    if 5 + 3 * slots > FOOTPRINT_REGS[0].index:
        raise CompileError(f"{slots} slots need more registers than the control program has")

    def assign(k):
        """Slot k takes sequence ``nxt`` (read its length), or goes idle."""
        idle, done = pb.fresh_label("idle"), pb.fresh_label("assigned")
        pb.li(tmp, n_seq)
        pb.emit(f"bge {nxt}, {tmp}, {idle}")
        for ptr, base, per_seq in ((x[k], x_base, x_seq), (h[k], h_base, h_seq)):
            pb.li(tmp, per_seq)
            pb.emit(f"mul {ptr}, {nxt}, {tmp}")
            pb.li(tmp, base)
            pb.emit(f"add {ptr}, {ptr}, {tmp}")
        pb.li(tmp, len_word)
        pb.emit(f"add {tmp}, {tmp}, {nxt}")
        pb.emit(f"lw {end[k]}, 0({tmp})")                 # the length ...
        pb.li(tmp, h_step)
        pb.emit(f"mul {end[k]}, {end[k]}, {tmp}")
        pb.emit(f"add {end[k]}, {end[k]}, {h[k]}")         # ... as the end of its outputs
        pb.emit(f"addi {nxt}, {nxt}, 1")
        pb.emit(f"j {done}")
        pb.label(idle)
        pb.li(end[k], 0)
        pb.label(done)

    def slot_step(k, parts=(0, 1, 2)):
        """Slot k's step, if it has a sequence; then its next sequence, if this one ended."""
        skip = pb.fresh_label("skip")
        pb.emit(f"beq {end[k]}, r0, {skip}")
        step(k, x[k], h[k], parts)
        pb.emit(f"addi {x[k]}, {x[k]}, {x_step}")
        pb.emit(f"addi {h[k]}, {h[k]}, {h_step}")
        pb.li(any_, 1)
        pb.emit(f"blt {h[k]}, {end[k]}, {skip}")
        assign(k)
        pb.label(skip)

    def join(r):
        define(r)
        assign(r)

    pb.li(nxt, 0)
    slot_rounds(pb, slots, any_, join, lambda ks: [slot_step(k) for k in ks])


def random_seqloop(config, *, sequences=8, hidden=8, inputs=8, slots=4, max_length=20,
                   seed=0, mode="dypipe"):
    """Random inputs and weights; lengths uniform in 1..max_length from ``seed``."""
    rng = np.random.default_rng(seed)
    one = 1 << config.frac_bits
    lengths = rng.integers(1, max_length + 1, sequences)
    xs = rng.integers(-one, one, (sequences, max_length, inputs), dtype=np.int16)
    scale = max(1, int(one / np.sqrt(inputs + hidden)))
    wx = rng.integers(-scale, scale + 1, (hidden, inputs), dtype=np.int16)
    wh = rng.integers(-scale, scale + 1, (hidden, hidden), dtype=np.int16)
    bias = rng.integers(-one // 4, one // 4, hidden, dtype=np.int16)
    return compile_seqloop(config, xs, lengths, wx, wh, bias, slots=slots,
                           max_length=max_length, mode=mode)
