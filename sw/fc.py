"""Fully connected layer: ``y = act(W @ x + b)``, compiled to Load / Compute / Store tasks.

Tiling. The whole input tensor sits in NBin (``ceil(elements / C)`` rows, its halo and unused
lanes included: their weights are zero). Outputs are computed in blocks of R neurons; a tile
is up to ``TM`` blocks whose weights fill half of SB and whose bias/outputs fill half of NBout,
so tile ``t + 1`` loads into one half while tile ``t`` is computed and stored from the other
(double buffering). Tile ``t`` uses half ``(first_half + t) % 2``: a network starts an FC layer
in the half the previous one did not end in, so that its first weights load while the previous
layer's last tile computes.

Per tile: load the weights and bias, (the first tile only: load the input), MVM, store. The
steps of the full tiles repeat with values that change linearly or alternate between the two
halves, so a DyPipe program runs them as a loop.

When the weights of one block of outputs do not fit half of SB, the input is split into parts
of at most half of SB each: a tile is one block, and its dot product runs as one MVM per part,
each part's weights loading into the other half while the last part computes. The MVMs keep
their accumulators from one to the next (``acc_out`` / ``acc_in``), so the result is exact.

DRAM layout. Weights are stored pre-blocked: for block ``m``, chunk ``k``, the R x C weight
block ``W[m*R + r, k*C + c]`` is one contiguous SB row (lane ``r*C + c``); a tile's weights are
one contiguous transfer. The bias is padded with zeros to whole blocks.
"""

import functools

import numpy as np

from .golden import fc as golden_fc
from .image import DramImage
from .isa import Act, Buf, Unit, Space, MVM_PARAMS
from .functions import LOAD, dma_params, dma_task
from .layer import Layer
from .program import ProgramBuilder, module_function
from .schedule import Task, emit
from .tensor import alloc_tensor
from .workload import Workload, CompileError, MODES

__all__ = ["FCLayer", "compile_fc", "block_weights", "random_fc", "random_layer",
           "FC_FUNCTIONS", "LOAD_WEIGHTS_BIAS", "alloc_vector", "footprint", "barrier",
           "dma_params", "load_nbin", "load_sb"]

load_nbin, load_sb = LOAD[Buf.NBIN], LOAD[Buf.SB]


@module_function(Unit.IO, "w_dram", "w_buf", "w_beats", "b_dram", "b_buf", "b_beats",
                 name="load_weights_bias")
def LOAD_WEIGHTS_BIAS(f, p):
    """A tile's weights into SB and its bias into NBout: two contiguous transfers."""
    f.dload_span(Buf.SB, p.w_dram, p.w_buf, p.w_beats)
    f.dload_span(Buf.NBOUT, p.b_dram, p.b_buf, p.b_beats)


@functools.lru_cache(maxsize=None)
def mvm_function(act, wshift=0):
    """A function running one :attr:`Op.MVM` with bias and ``act``, on weights with
    ``wshift`` extra fraction bits."""
    name = f"mvm_bias_{Act(act).name.lower()}{f'_w{wshift}' if wshift else ''}"

    @module_function(Unit.PFU, *MVM_PARAMS, name=name)
    def mvm(f, p):
        f.mvm(p.dst, bias=True, act=act, wshift=wshift)
    return mvm


#: Act -> the MVM function of an FC layer (weights without extra fraction bits).
FC_FUNCTIONS = {act: mvm_function(act) for act in Act}


@functools.lru_cache(maxsize=None)
def _split_mvm(first, last, act, wshift):
    """The MVM of one input part: the first starts from the bias, all but the last keep their
    accumulators, the last applies the activation."""
    name = (f"mvm_part_{'first' if first else 'next'}_{'last_' if last else ''}"
            f"{act.name.lower()}{f'_w{wshift}' if wshift else ''}")

    @module_function(Unit.PFU, *MVM_PARAMS, name=name)
    def mvm(f, p):
        f.mvm(p.dst, bias=first, act=act if last else Act.NONE, acc_in=not first,
              acc_out=not last, wshift=wshift)
    return mvm


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


def alloc_vector(image, name, n, data=None):
    """A flat vector of ``n`` values as a 1 x 1 x n tensor."""
    return alloc_tensor(image, name, 1, 1, n,
                        data=None if data is None else np.asarray(data).reshape(1, 1, n))


class FCLayer(Layer):
    """One FC layer placed in a DRAM image. ``x`` is a :class:`Tensor` (its interior flattened
    in (h, w, c) order is the input vector); ``weights`` is (N, h * w * c) in that order, with
    ``frac_bits + w_shift`` fraction bits; the outputs go to channels ``channel`` .. ``channel +
    N`` of ``out`` (a 1 x 1 tensor)."""

    kind = "fc"

    def __init__(self, config, image, name, x, weights, bias, act=Act.RELU, *, out,
                 channel=0, first_half=0, w_shift=0):
        super().__init__(config, name, (x,), out, channel)
        self.act, self.first_half, self.w_shift = Act(act), first_half, w_shift
        self.weights = np.asarray(weights, dtype=np.int16)
        self.bias = np.asarray(bias, dtype=np.int16)
        n_out, n_in = self.weights.shape
        R, C, V = config.pe_rows, config.pe_cols, config.beat_elems
        if n_in != x.h * x.w * x.c:
            raise CompileError(f"{name}: weights take {n_in} inputs, the input tensor has "
                               f"{x.h}x{x.w}x{x.c} = {x.h * x.w * x.c}")
        if (out.h, out.w) != (1, 1) or channel % V or channel + n_out > out.cpitch:
            raise CompileError(f"{name}: the output must be channels {channel}..{channel + n_out}"
                               f" of a 1x1 tensor, starting on a beat; got {out.h}x{out.w}x"
                               f"{out.c}")
        self.n_out, self.n_in = n_out, n_in
        phys = x.stored_h * x.stored_w * x.cpitch
        self.kc, self.nb = -(-phys // C), -(-n_out // R)
        if self.kc > config.nbin_rows:
            raise CompileError(
                f"{name}: the input ({phys} values) needs {self.kc} NBin rows of {C}; "
                f"the {config.name} configuration's NBin has {config.nbin_rows}")
        self.half_sb, self.half_nbout = config.sb_rows // 2, config.nbout_rows // 2
        # Input parts per block (more than one: the weights of one block exceed half of SB).
        self.parts = -(-self.kc // self.half_sb)
        self.tm = 1 if self.parts > 1 else min(self.half_sb // self.kc, self.half_nbout, self.nb)
        self.sb_row_beats = config.sb_row_elems // V
        self.nbout_row_beats = config.nbout_row_elems // V
        self.x_beats = x.region.beats
        self.x_row_beats = config.nbin_row_elems // V
        # The weights over the stored input: zero for the halo and the unused lanes.
        expanded = np.zeros((n_out, x.stored_h, x.stored_w, x.cpitch), dtype=np.int16)
        expanded[:, x.halo:x.halo + x.h, x.halo:x.halo + x.w, :x.c] = \
            self.weights.reshape(n_out, x.h, x.w, x.c)
        b_pad = np.zeros(self.nb * R, dtype=np.int16)
        b_pad[:n_out] = bias
        self.rw = image.alloc(f"{name}.w", self.nb * self.kc * R * C,
                              block_weights(expanded.reshape(n_out, -1), R, C))
        self.rb = image.alloc(f"{name}.b", b_pad.size, b_pad)
        self.y_beats = -(-n_out // V)

    @property
    def tiles(self):
        return -(-self.nb // self.tm)

    @property
    def out_shape(self):
        return (1, 1, self.n_out)

    @property
    def macs(self):
        return self.n_out * self.n_in

    @property
    def weight_elems(self):
        return self.weights.size + self.bias.size

    def golden(self, x):
        return golden_fc(np.asarray(x).reshape(-1), self.weights, self.bias,
                         self.config.frac_bits, self.act, self.config.acc_bits, self.w_shift
                         ).reshape(1, 1, self.n_out)

    def details(self):
        return {"out": self.n_out, "in": self.n_in, "act": self.act.name.lower(),
                "tiling": {"tiles": self.tiles, "blocks_per_tile": self.tm,
                           "input_parts": self.parts}}

    def _load_input(self):
        x = self.inputs[0]
        return dma_task("load", Buf.NBIN, dram_addr=x.region.beat,
                                               buf_addr=self.x_row * self.x_row_beats,
                                               row_beats=self.x_beats,
                    reads=((Space.DRAM, x.region.beat, self.x_beats),),
                    writes=((Space.NBIN, self.x_row * self.x_row_beats, self.x_beats),))

    @property
    def x_row(self):
        """The NBin row the input starts at."""
        return self.place(Space.NBIN, 0, self.kc)

    def steps(self):
        """One step per tile; the first also loads the input, after its weights, so that those
        can stream while an earlier layer still produces the input."""
        if self.parts > 1:
            return self._split_steps()
        y0 = self.out.beat(0, 0, self.channel)
        x_fp = (Space.NBIN, self.x_row * self.x_row_beats, self.x_beats)
        steps, done = [], 0
        for t in range(self.tiles):
            m, half = min(self.tm, self.nb - done), (self.first_half + t) % 2
            sb_row = self.place(Space.SB, half * self.half_sb, self.half_sb)
            nbout_row = self.place(Space.NBOUT, half * self.half_nbout, self.half_nbout)
            sb_beat, nbout_beat = sb_row * self.sb_row_beats, nbout_row * self.nbout_row_beats
            w_beats, b_beats = m * self.kc * self.sb_row_beats, m * self.nbout_row_beats
            y_ptr = y0 + done * self.nbout_row_beats
            y_beats = min(b_beats, self.y_beats - done * self.nbout_row_beats)
            w_fp, b_fp = (Space.SB, sb_beat, w_beats), (Space.NBOUT, nbout_beat, b_beats)
            step = [Task(LOAD_WEIGHTS_BIAS, dict(
                w_dram=self.rw.beat + done * self.kc * self.sb_row_beats, w_buf=sb_beat,
                w_beats=w_beats, b_dram=self.rb.beat + done * self.nbout_row_beats,
                b_buf=nbout_beat, b_beats=b_beats), writes=(w_fp, b_fp))]
            if t == 0:
                step.append(self._load_input())
            step.append(Task(mvm_function(self.act, self.w_shift), dict(
                dst=nbout_row, src=self.x_row, weights=sb_row, k_chunks=self.kc, m_blocks=m),
                reads=(x_fp, w_fp), writes=(b_fp,)))
            step.append(dma_task("store", Buf.NBOUT,
                dram_addr=y_ptr, buf_addr=nbout_beat, row_beats=y_beats,
                reads=(b_fp,), writes=((Space.DRAM, y_ptr, y_beats),)))
            steps.append(step)
            done += m
        return steps

    def _split_steps(self):
        """One step per block: per input part, load its weights into the next SB half and run
        one MVM, the accumulators carried from part to part; then store the block."""
        sbb, outb = self.sb_row_beats, self.nbout_row_beats
        y0 = self.out.beat(0, 0, self.channel)
        bounds = [self.kc * i // self.parts for i in range(self.parts + 1)]
        steps, count = [], self.first_half
        for b in range(self.nb):
            nbout_row = self.place(Space.NBOUT, (self.first_half + b) % 2, 1)
            out_fp = (Space.NBOUT, nbout_row * outb, outb)
            step = []
            for i, (k0, k1) in enumerate(zip(bounds, bounds[1:])):
                half, count = count % 2, count + 1
                sb_row = self.place(Space.SB, half * self.half_sb, self.half_sb)
                w_dram = self.rw.beat + (b * self.kc + k0) * sbb
                w_fp = (Space.SB, sb_row * sbb, (k1 - k0) * sbb)
                if i == 0:
                    step.append(Task(LOAD_WEIGHTS_BIAS, dict(
                        w_dram=w_dram, w_buf=sb_row * sbb, w_beats=(k1 - k0) * sbb,
                        b_dram=self.rb.beat + b * outb, b_buf=nbout_row * outb, b_beats=outb),
                        writes=(w_fp, out_fp)))
                    if b == 0:
                        step.append(self._load_input())
                else:
                    step.append(dma_task("load", Buf.SB,
                        dram_addr=w_dram, buf_addr=sb_row * sbb, row_beats=(k1 - k0) * sbb,
                        writes=(w_fp,)))
                last = i == self.parts - 1
                fn = _split_mvm(first=i == 0, last=last, act=self.act, wshift=self.w_shift)
                step.append(Task(fn, dict(dst=nbout_row, src=self.x_row + k0, weights=sb_row,
                                          k_chunks=k1 - k0, m_blocks=1),
                                 reads=((Space.NBIN, (self.x_row + k0) * self.x_row_beats,
                                         (k1 - k0) * self.x_row_beats), w_fp),
                                 writes=(out_fp,)))
            y_ptr = y0 + b * outb
            y_beats = min(outb, self.y_beats - b * outb)
            step.append(dma_task("store", Buf.NBOUT,
                dram_addr=y_ptr, buf_addr=nbout_row * outb, row_beats=y_beats,
                reads=(out_fp,), writes=((Space.DRAM, y_ptr, y_beats),)))
            steps.append(step)
        return steps

    @property
    def next_half(self):
        """The half of SB the next FC layer should start in."""
        return (self.first_half + self.tiles * self.parts) % 2


def compile_fc(config, x, weights, bias, *, act=Act.RELU, mode="dypipe", name="fc"):
    """Compile one FC layer with its data into a :class:`Workload` whose output region is
    ``{name}.y``. Raises :class:`CompileError` when the layer does not fit the buffers."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    image = DramImage(config)
    n_out, n_in = np.shape(weights)
    tx = alloc_vector(image, f"{name}.x", n_in, x)
    ty = alloc_vector(image, f"{name}.y", n_out)
    layer = FCLayer(config, image, name, tx, weights, bias, act, out=ty)
    pb = ProgramBuilder(config)
    emit(pb, layer.steps(), mode)
    pb.halt()
    y = ty.pack(layer.golden(x))
    return Workload(name=name, mode=mode, config=config,
                    program=pb.assemble(f"<{name}>", image=image),
                    image=image, expected={ty.region.name: y},
                    compare={ty.region.name: ty.mask()}, meta=layer.meta())


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
