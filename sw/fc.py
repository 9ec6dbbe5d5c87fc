"""Fully connected layer: ``y = act(W @ x + b)``, compiled to Load / Compute / Store tasks.

Tiling. The whole input vector sits in NBin (``ceil(K / C)`` rows). Outputs are computed in
blocks of R neurons; a tile is up to ``TM`` blocks whose weights fill half of SB and whose
bias/outputs fill half of NBout, so tile ``t + 1`` loads into one half while tile ``t`` is
computed and stored from the other (double buffering).

DRAM layout. Weights are stored pre-blocked: for block ``m``, chunk ``k``, the R x C weight
block ``W[m*R + r, k*C + c]`` is one contiguous SB row (lane ``r*C + c``); a tile's weights are
one contiguous transfer. ``x``, ``b`` and ``y`` are padded with zeros to whole rows.
"""

import numpy as np

from .golden import fc as golden_fc
from .image import DramImage
from .isa import Act, Buf, Unit, Space, DMA_PARAMS, MVM_PARAMS
from .program import ProgramBuilder, Reg, module_function
from .workload import Workload, CompileError, MODES

__all__ = ["compile_fc", "block_weights", "random_fc", "FC_FUNCTIONS"]


def _prefixed(prefix):
    return tuple(f"{prefix}_{name}" for name in DMA_PARAMS)


@module_function(Unit.IO, *DMA_PARAMS)
def load_nbin(f, p):
    f.dload(Buf.NBIN, p.dram_addr)


@module_function(Unit.IO, *_prefixed("w"), *_prefixed("b"))
def load_weights_bias(f, p):
    f.dload(Buf.SB, p.w_dram_addr)
    f.dload(Buf.NBOUT, p.b_dram_addr)


@module_function(Unit.STORE, *DMA_PARAMS)
def store_nbout(f, p):
    f.dstore(Buf.NBOUT, p.dram_addr)


def _mvm_function(act):
    @module_function(Unit.PFU, *MVM_PARAMS, name=f"mvm_bias_{Act(act).name.lower()}")
    def mvm(f, p):
        f.mvm(p.dst, bias=True, act=act)
    return mvm


FC_FUNCTIONS = {act: _mvm_function(act) for act in Act}


def block_weights(weights, R, C):
    """(N, K) weights to the SB-row order: blocks, chunks, R, C (zero padded)."""
    n, k = weights.shape
    nb, kc = -(-n // R), -(-k // C)
    padded = np.zeros((nb * R, kc * C), dtype=np.int16)
    padded[:n, :k] = weights
    return padded.reshape(nb, R, kc, C).transpose(0, 2, 1, 3).reshape(-1)


def _dma(prefix="", **values):
    """Parameters of one DMA: defaults rows=1 and zero strides."""
    values = {"rows": 1, "dram_stride": 0, "buf_stride": 0, **values}
    return {f"{prefix}{name}": values[name] for name in DMA_PARAMS}


def compile_fc(config, x, weights, bias, *, act=Act.RELU, mode="dypipe", name="fc"):
    """Compile one FC layer with its data into a :class:`Workload`.

    Raises :class:`CompileError` when the layer does not fit the configuration's buffers."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    weights = np.asarray(weights, dtype=np.int16)
    n_out, n_in = weights.shape
    R, C, V = config.pe_rows, config.pe_cols, config.beat_elems
    kc, nb = -(-n_in // C), -(-n_out // R)
    if kc > config.nbin_rows:
        raise CompileError(
            f"{name}: the input vector ({n_in} values) needs {kc} NBin rows of {C}; the "
            f"{config.name} configuration's NBin has {config.nbin_rows}")
    half_sb, half_nbout = config.sb_rows // 2, config.nbout_rows // 2
    if kc > half_sb:
        raise CompileError(
            f"{name}: one block of {R} outputs needs {kc} SB rows of weights; double buffering "
            f"leaves {half_sb} of the {config.name} configuration's {config.sb_rows}")
    tm = min(half_sb // kc, half_nbout, nb)
    sb_row_beats = config.sb_row_elems // V
    nbout_row_beats = config.nbout_row_elems // V

    image = DramImage(config)
    x_pad = np.zeros(kc * C, dtype=np.int16)
    x_pad[:n_in] = x
    b_pad = np.zeros(nb * R, dtype=np.int16)
    b_pad[:n_out] = bias
    rx = image.alloc("x", x_pad.size, x_pad)
    rw = image.alloc("w", nb * kc * R * C, block_weights(weights, R, C))
    rb = image.alloc("b", b_pad.size, b_pad)
    ry = image.alloc("y", nb * R)

    mvm = FC_FUNCTIONS[Act(act)]
    pb = ProgramBuilder(config)
    fp = (lambda **kw: {}) if mode == "nonepipe" else (lambda **kw: kw)   # barriers
    pb.task(load_nbin, **_dma(dram_addr=rx.beat, buf_addr=0, row_beats=rx.beats),
            **fp(reads=[(Space.DRAM, rx.beat, rx.beats)], writes=[(Space.NBIN, 0, rx.beats)]))

    def tile(w_ptr, b_ptr, y_ptr, m, sb_row, sb_beat, nbout_row, nbout_beat, w_beats, b_beats):
        """The three tasks of one tile (integers for a static program, registers otherwise)."""
        pb.task(load_weights_bias,
                **_dma("w_", dram_addr=w_ptr, buf_addr=sb_beat, row_beats=w_beats),
                **_dma("b_", dram_addr=b_ptr, buf_addr=nbout_beat, row_beats=b_beats),
                **fp(reads=[(Space.DRAM, w_ptr, w_beats), (Space.DRAM, b_ptr, b_beats)],
                     writes=[(Space.SB, sb_beat, w_beats), (Space.NBOUT, nbout_beat, b_beats)]))
        pb.task(mvm, dst=nbout_row, src=0, weights=sb_row, k_chunks=kc, m_blocks=m,
                **fp(reads=[(Space.NBIN, 0, rx.beats), (Space.SB, sb_beat, w_beats)],
                     writes=[(Space.NBOUT, nbout_beat, b_beats)]))
        pb.task(store_nbout, **_dma(dram_addr=y_ptr, buf_addr=nbout_beat, row_beats=b_beats),
                **fp(reads=[(Space.NBOUT, nbout_beat, b_beats)],
                     writes=[(Space.DRAM, y_ptr, b_beats)]))

    if mode in ("static", "nonepipe"):
        # Every context is a compile-time immediate: the control program is straight-line.
        done = 0
        for t in range(-(-nb // tm)):
            m, half = min(tm, nb - done), t % 2
            tile(rw.beat + done * kc * sb_row_beats, rb.beat + done * nbout_row_beats,
                 ry.beat + done * nbout_row_beats, m,
                 half * half_sb, half * half_sb * sb_row_beats,
                 half * half_nbout, half * half_nbout * nbout_row_beats,
                 m * kc * sb_row_beats, m * nbout_row_beats)
            done += m
    else:
        # The control program walks the tiles at run time.
        rem, w_ptr, b_ptr, y_ptr, half, m, tmp = (Reg(i) for i in range(2, 9))
        sb_row, sb_beat, nbout_row, nbout_beat, w_beats, b_beats = (Reg(i) for i in range(9, 15))
        pb.li(rem, nb)
        pb.li(w_ptr, rw.beat)
        pb.li(b_ptr, rb.beat)
        pb.li(y_ptr, ry.beat)
        pb.li(half, 0)
        loop = pb.label(pb.fresh_label("tile"))
        # m = min(tm, rem): blocks in this tile.
        pb.li(m, tm)
        full = pb.fresh_label("full")
        pb.emit(f"bge {rem}, {m}, {full}")
        pb.li(m, rem)
        pb.label(full)
        for row, beat, rows, row_beats in ((sb_row, sb_beat, half_sb, sb_row_beats),
                                           (nbout_row, nbout_beat, half_nbout, nbout_row_beats)):
            pb.li(tmp, rows)
            pb.emit(f"mul {row}, {half}, {tmp}")
            pb.li(tmp, row_beats)
            pb.emit(f"mul {beat}, {row}, {tmp}")
        pb.li(tmp, kc * sb_row_beats)
        pb.emit(f"mul {w_beats}, {m}, {tmp}")
        pb.li(tmp, nbout_row_beats)
        pb.emit(f"mul {b_beats}, {m}, {tmp}")
        tile(w_ptr, b_ptr, y_ptr, m, sb_row, sb_beat, nbout_row, nbout_beat, w_beats, b_beats)
        pb.emit(f"add {w_ptr}, {w_ptr}, {w_beats}")
        pb.emit(f"add {b_ptr}, {b_ptr}, {b_beats}")
        pb.emit(f"add {y_ptr}, {y_ptr}, {b_beats}")
        pb.emit(f"sub {rem}, {rem}, {m}")
        pb.emit(f"xori {half}, {half}, 1")
        pb.emit(f"bne {rem}, r0, {loop}")
    pb.halt()
    program = pb.assemble(f"<{name}>")

    y = golden_fc(x, weights, bias, config.frac_bits, act, config.acc_bits)
    y_pad = np.zeros(nb * R, dtype=np.int16)
    y_pad[:n_out] = y
    return Workload(
        name=name, mode=mode, config=config, program=program, image=image,
        expected={"y": y_pad},
        meta={"layer": "fc", "out": n_out, "in": n_in, "act": Act(act).name.lower(),
              "macs": n_out * n_in, "tiles": -(-nb // tm), "blocks_per_tile": tm,
              "weight_bytes": n_out * n_in * 2})


def random_fc(config, n_out, n_in, *, seed=0, act=Act.RELU, mode="dypipe", name="fc"):
    """An FC layer with random weights and inputs scaled so that outputs mostly stay in range
    (some saturate, which the test wants too)."""
    rng = np.random.default_rng(seed)
    one = 1 << config.frac_bits
    x = rng.integers(-one, one, n_in, dtype=np.int16)
    w_scale = max(1, int(one / np.sqrt(n_in)))
    weights = rng.integers(-w_scale, w_scale + 1, (n_out, n_in), dtype=np.int16)
    bias = rng.integers(-one, one, n_out, dtype=np.int16)
    return compile_fc(config, x, weights, bias, act=act, mode=mode, name=name)
