"""A new operator written with the programming interface alone: a batched FC layer.

``Y[:, j] = relu(W @ X[:, j] + b)`` for every column ``j`` of ``X``. The weights are loaded
into SB once and stay there; each column is one Load / Compute / Store triple, alternating
between two NBin and two NBout areas so that column ``j + 1`` loads while ``j`` computes.
The triples are task templates, one per buffer half, whose operands are the column's DRAM
addresses: a column costs the control unit two ``li`` and three ``spawn``. Nothing in the
compiler knows about this operator. See docs/programming.md.
"""

import numpy as np

from dypipe.sw.fc import block_weights
from dypipe.sw.golden import fc as golden_fc
from dypipe.sw.image import DramImage
from dypipe.sw.isa import Act, Buf, Space, Unit
from dypipe.sw.program import ARG, ProgramBuilder, Reg, module_function
from dypipe.sw.workload import Workload


# -- module functions: which module runs them, and which parameters come from the CB ---------

@module_function(Unit.IO, "dram", "beats")
def load_weights(f, p):
    f.dload_span(Buf.SB, p.dram, 0, p.beats)


@module_function(Unit.IO, "x_dram", "x_buf", "x_beats", "b_dram", "b_buf", "b_beats")
def load_column(f, p):
    # Two contiguous transfers; dload_span builds each DMA's parameter block in scratch
    # registers above the parameters.
    f.dload_span(Buf.NBIN, p.x_dram, p.x_buf, p.x_beats)
    f.dload_span(Buf.NBOUT, p.b_dram, p.b_buf, p.b_beats)


@module_function(Unit.PFU, "dst", "src", "weights", "k_chunks", "m_blocks")
def compute_column(f, p):
    f.mvm(p.dst, bias=True, act=Act.RELU)


@module_function(Unit.STORE, "dram", "buf", "beats")
def store_column(f, p):
    f.dstore_span(Buf.NBOUT, p.dram, p.buf, p.beats)


# -- the control program ----------------------------------------------------------------------

def batched_fc(config, x, w, b):
    """A :class:`Workload` computing ``relu(w @ x + b[:, None])`` for x of shape (in, batch)."""
    R, C, V = config.pe_rows, config.pe_cols, config.beat_elems
    n_out, n_in = w.shape
    batch = x.shape[1]
    kc, nb = -(-n_in // C), -(-n_out // R)
    x_beats, y_beats = kc * C // V, nb * R // V
    w_beats = nb * kc * R * C // V
    assert nb * kc <= config.sb_rows and 2 * kc <= config.nbin_rows, "too big for this sketch"

    image = DramImage(config)
    xs = np.zeros((batch, kc * C), np.int16)
    xs[:, :n_in] = x.T
    rx = image.alloc("x", xs.size, xs)
    rw = image.alloc("w", w_beats * V, block_weights(w, R, C))
    bias = np.zeros(nb * R, np.int16)
    bias[:n_out] = b
    rb = image.alloc("b", bias.size, bias)
    ry = image.alloc("y", batch * nb * R)

    pb = ProgramBuilder(config)
    # A one-off task: its context word by word, then its commit.
    pb.task(load_weights, dram=rw.beat, beats=w_beats, writes=[(Space.SB, 0, w_beats)])
    # The column tasks as templates, one set per buffer half (double buffering). ARG[0] and
    # ARG[1], the first two registers of each spawn, are the column's x and y addresses.
    x_dram, y_dram = ARG[0], ARG[1]
    column = []
    for half in (0, 1):
        nbin, nbout = half * x_beats, half * y_beats
        column.append((
            pb.define(load_column, x_dram=x_dram, x_buf=nbin, x_beats=x_beats,
                      b_dram=rb.beat, b_buf=nbout, b_beats=y_beats,
                      writes=[(Space.NBIN, nbin, x_beats), (Space.NBOUT, nbout, y_beats)]),
            pb.define(compute_column, dst=half * nb, src=half * kc, weights=0, k_chunks=kc,
                      m_blocks=nb,
                      reads=[(Space.NBIN, nbin, x_beats), (Space.SB, 0, w_beats)],
                      writes=[(Space.NBOUT, nbout, y_beats)]),
            pb.define(store_column, dram=y_dram, buf=nbout, beats=y_beats,
                      reads=[(Space.NBOUT, nbout, y_beats)],
                      writes=[(Space.DRAM, y_dram, y_beats)])))
    x_ptr, y_ptr = Reg(2), Reg(3)
    for j in range(batch):
        pb.li(x_ptr, rx.beat + j * x_beats)
        pb.li(y_ptr, ry.beat + j * y_beats)
        for template in column[j % 2]:
            pb.spawn(template, x_ptr, y_ptr)
    pb.halt()

    expected = np.zeros((batch, nb * R), np.int16)
    for j in range(batch):
        expected[j, :n_out] = golden_fc(x[:, j], w, b, config.frac_bits, Act.RELU)
    return Workload(name="batched_fc", mode="dypipe", config=config,
                    program=pb.assemble("<batched_fc>", image=image), image=image,
                    expected={"y": expected.reshape(-1)},
                    meta={"macs": n_out * n_in * batch})


if __name__ == "__main__":
    from dypipe.config import PRESETS
    from dypipe.tb.runner import run_workload
    cfg = PRESETS["small"]
    rng = np.random.default_rng(0)
    x = rng.integers(-256, 256, (20, 6), dtype=np.int16)
    w = rng.integers(-60, 60, (10, 20), dtype=np.int16)
    b = rng.integers(-256, 256, 10, dtype=np.int16)
    result = run_workload(batched_fc(cfg, x, w, b))
    print(f"{result.cycles} cycles, verified: {result.verified}")
