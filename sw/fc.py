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
from .image import DramImage, Region
from .isa import Act, Buf, Unit, Space, DMA_PARAMS, MVM_PARAMS
from .functions import LOAD, STORE, dma_params
from .program import ProgramBuilder, Reg, module_function
from .workload import Workload, CompileError, MODES

__all__ = ["FCLayer", "compile_fc", "block_weights", "random_fc", "random_layer",
           "FC_FUNCTIONS", "footprint", "barrier", "dma_params", "load_nbin", "load_sb"]


def _prefixed(prefix):
    return tuple(f"{prefix}_{name}" for name in DMA_PARAMS)


load_nbin, load_sb = LOAD[Buf.NBIN], LOAD[Buf.SB]
store_nbout = STORE[Buf.NBOUT]


@module_function(Unit.IO, *_prefixed("w"), *_prefixed("b"))
def load_weights_bias(f, p):
    f.dload(Buf.SB, p.w_dram_addr)
    f.dload(Buf.NBOUT, p.b_dram_addr)


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


def footprint(**ranges):
    """``save_pc`` keywords declaring a task's footprint."""
    return ranges


def barrier(**ranges):
    """``save_pc`` keywords for NonePipe: no footprint, so the task is a barrier."""
    return {}


class FCLayer:
    """One FC layer placed in a DRAM image, ready to emit its tasks into a program.

    ``x`` is either the input values (a region ``{name}.x`` is allocated) or the
    :class:`~dypipe.sw.image.Region` of an earlier layer's output."""

    def __init__(self, config, image, name, x, weights, bias, act=Act.RELU, y=None):
        self.config, self.name, self.act = config, name, Act(act)
        self.weights = np.asarray(weights, dtype=np.int16)
        self.bias = np.asarray(bias, dtype=np.int16)
        n_out, n_in = self.weights.shape
        R, C, V = config.pe_rows, config.pe_cols, config.beat_elems
        self.n_out, self.n_in = n_out, n_in
        self.kc, self.nb = -(-n_in // C), -(-n_out // R)
        if self.kc > config.nbin_rows:
            raise CompileError(
                f"{name}: the input vector ({n_in} values) needs {self.kc} NBin rows of {C}; "
                f"the {config.name} configuration's NBin has {config.nbin_rows}")
        self.half_sb, self.half_nbout = config.sb_rows // 2, config.nbout_rows // 2
        if self.kc > self.half_sb:
            raise CompileError(
                f"{name}: one block of {R} outputs needs {self.kc} SB rows of weights; double "
                f"buffering leaves {self.half_sb} of the {config.name} configuration's "
                f"{config.sb_rows}")
        self.tm = min(self.half_sb // self.kc, self.half_nbout, self.nb)
        self.sb_row_beats = config.sb_row_elems // V
        self.nbout_row_beats = config.nbout_row_elems // V
        self.x_beats = self.kc * config.nbin_row_elems // V
        if isinstance(x, Region):
            if x.beats < self.x_beats:
                raise CompileError(f"{name}: input region {x.name} has {x.beats} beats, the "
                                   f"layer reads {self.x_beats}")
            self.rx = x
        else:
            x_pad = np.zeros(self.kc * C, dtype=np.int16)
            x_pad[:n_in] = x
            self.rx = image.alloc(f"{name}.x", x_pad.size, x_pad)
        b_pad = np.zeros(self.nb * R, dtype=np.int16)
        b_pad[:n_out] = bias
        self.rw = image.alloc(f"{name}.w", self.nb * self.kc * R * C,
                              block_weights(self.weights, R, C))
        self.rb = image.alloc(f"{name}.b", b_pad.size, b_pad)
        # Room for whole rows of this layer's output and of a following layer's input.
        y_elems = -(-n_out // max(R, C)) * max(R, C)
        if y is None:
            y = image.alloc(f"{name}.y", y_elems)
        elif y.elems < y_elems:
            raise CompileError(f"{name}: output region {y.name} holds {y.elems} values, the "
                               f"layer writes {y_elems}")
        self.ry = y

    @property
    def tiles(self):
        return -(-self.nb // self.tm)

    def golden(self, x):
        return golden_fc(x, self.weights, self.bias, self.config.frac_bits, self.act,
                         self.config.acc_bits)

    def meta(self):
        return {"out": self.n_out, "in": self.n_in, "act": self.act.name.lower(),
                "macs": self.n_out * self.n_in, "tiles": self.tiles,
                "blocks_per_tile": self.tm, "weight_bytes": self.n_out * self.n_in * 2}

    def emit(self, pb, mode, first_half=0):
        """Emit the layer's tasks: a static program unrolled with immediates; DyPipe a loop
        over the tiles at run time; NonePipe the same loop with every task a barrier. Tile ``t``
        uses buffer half ``(first_half + t) % 2``; returns the half the next layer should start in,
        so that its first weights can load while this layer's last tile computes."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        fp = barrier if mode == "nonepipe" else footprint
        if mode != "static":
            with pb.atomic():            # a run-time loop stays in one overlay segment
                self._emit_loop(pb, first_half, fp)
            pb.boundary()
            return (first_half + self.tiles) % 2
        done = 0
        for t in range(self.tiles):
            m, half = min(self.tm, self.nb - done), (first_half + t) % 2
            self._tile(pb, fp, self.rw.beat + done * self.kc * self.sb_row_beats,
                       self.rb.beat + done * self.nbout_row_beats,
                       self.ry.beat + done * self.nbout_row_beats, m,
                       half * self.half_sb, half * self.half_sb * self.sb_row_beats,
                       half * self.half_nbout, half * self.half_nbout * self.nbout_row_beats,
                       m * self.kc * self.sb_row_beats, m * self.nbout_row_beats,
                       first=t == 0)
            done += m
        return (first_half + self.tiles) % 2

    def _load_input(self, pb, fp):
        rx = self.rx
        pb.task(load_nbin, **dma_params(dram_addr=rx.beat, buf_addr=0, row_beats=self.x_beats),
                **fp(reads=[(Space.DRAM, rx.beat, self.x_beats)],
                     writes=[(Space.NBIN, 0, self.x_beats)]))

    def _tile(self, pb, fp, w_ptr, b_ptr, y_ptr, m, sb_row, sb_beat, nbout_row, nbout_beat,
              w_beats, b_beats, first):
        """The tasks of one tile (integers in a static program, registers otherwise). The
        input vector is loaded after the first tile's weights, so that those can stream while
        an earlier layer still produces the input."""
        pb.task(load_weights_bias,
                **dma_params("w_", dram_addr=w_ptr, buf_addr=sb_beat, row_beats=w_beats),
                **dma_params("b_", dram_addr=b_ptr, buf_addr=nbout_beat, row_beats=b_beats),
                **fp(writes=[(Space.SB, sb_beat, w_beats), (Space.NBOUT, nbout_beat, b_beats)]))
        if first is True:
            self._load_input(pb, fp)
        elif first is not False:            # a register: load the input when it is non-zero
            skip = pb.fresh_label("have_x")
            pb.emit(f"beq {first}, r0, {skip}")
            self._load_input(pb, fp)
            pb.label(skip)
        pb.task(FC_FUNCTIONS[self.act], dst=nbout_row, src=0, weights=sb_row,
                k_chunks=self.kc, m_blocks=m,
                **fp(reads=[(Space.NBIN, 0, self.x_beats), (Space.SB, sb_beat, w_beats)],
                     writes=[(Space.NBOUT, nbout_beat, b_beats)]))
        pb.task(store_nbout, **dma_params(dram_addr=y_ptr, buf_addr=nbout_beat, row_beats=b_beats),
                **fp(reads=[(Space.NBOUT, nbout_beat, b_beats)],
                     writes=[(Space.DRAM, y_ptr, b_beats)]))

    def _emit_loop(self, pb, first_half, fp):
        rem, w_ptr, b_ptr, y_ptr, half, m, tmp, first = (Reg(i) for i in range(2, 10))
        sb_row, sb_beat, nbout_row, nbout_beat, w_beats, b_beats = (Reg(i) for i in range(10, 16))
        pb.li(rem, self.nb)
        pb.li(w_ptr, self.rw.beat)
        pb.li(b_ptr, self.rb.beat)
        pb.li(y_ptr, self.ry.beat)
        pb.li(half, first_half)
        pb.li(first, 1)
        loop = pb.label(pb.fresh_label("tile"))
        # m = min(tm, rem): blocks in this tile.
        pb.li(m, self.tm)
        full = pb.fresh_label("full")
        pb.emit(f"bge {rem}, {m}, {full}")
        pb.li(m, rem)
        pb.label(full)
        for row, beat, rows, row_beats in (
                (sb_row, sb_beat, self.half_sb, self.sb_row_beats),
                (nbout_row, nbout_beat, self.half_nbout, self.nbout_row_beats)):
            pb.li(tmp, rows)
            pb.emit(f"mul {row}, {half}, {tmp}")
            pb.li(tmp, row_beats)
            pb.emit(f"mul {beat}, {row}, {tmp}")
        pb.li(tmp, self.kc * self.sb_row_beats)
        pb.emit(f"mul {w_beats}, {m}, {tmp}")
        pb.li(tmp, self.nbout_row_beats)
        pb.emit(f"mul {b_beats}, {m}, {tmp}")
        self._tile(pb, fp, w_ptr, b_ptr, y_ptr, m, sb_row, sb_beat, nbout_row,
                   nbout_beat, w_beats, b_beats, first=first)
        pb.li(first, 0)
        pb.emit(f"add {w_ptr}, {w_ptr}, {w_beats}")
        pb.emit(f"add {b_ptr}, {b_ptr}, {b_beats}")
        pb.emit(f"add {y_ptr}, {y_ptr}, {b_beats}")
        pb.emit(f"sub {rem}, {rem}, {m}")
        pb.emit(f"xori {half}, {half}, 1")
        pb.emit(f"bne {rem}, r0, {loop}")


def compile_fc(config, x, weights, bias, *, act=Act.RELU, mode="dypipe", name="fc"):
    """Compile one FC layer with its data into a :class:`Workload` whose output region is
    ``y``. Raises :class:`CompileError` when the layer does not fit the buffers."""
    image = DramImage(config)
    layer = FCLayer(config, image, name, x, weights, bias, act)
    pb = ProgramBuilder(config)
    layer.emit(pb, mode)
    pb.halt()
    y = np.zeros(layer.ry.elems, dtype=np.int16)
    y[:layer.n_out] = layer.golden(x)
    return Workload(name=name, mode=mode, config=config,
                    program=pb.assemble(f"<{name}>", image=image),
                    image=image, expected={layer.ry.name: y},
                    meta={"layer": "fc", **layer.meta()})


def random_layer(config, rng, n_out, n_in):
    """Random weights and bias scaled so that outputs of inputs in [-1, 1) mostly stay in range
    (some saturate, which the tests want too)."""
    one = 1 << config.frac_bits
    w_scale = max(1, int(one / np.sqrt(n_in)))
    weights = rng.integers(-w_scale, w_scale + 1, (n_out, n_in), dtype=np.int16)
    bias = rng.integers(-one, one, n_out, dtype=np.int16)
    return weights, bias


def random_fc(config, n_out, n_in, *, seed=0, act=Act.RELU, mode="dypipe", name="fc"):
    """An FC layer with random inputs, weights and bias."""
    rng = np.random.default_rng(seed)
    one = 1 << config.frac_bits
    x = rng.integers(-one, one, n_in, dtype=np.int16)
    weights, bias = random_layer(config, rng, n_out, n_in)
    return compile_fc(config, x, weights, bias, act=act, mode=mode, name=name)
