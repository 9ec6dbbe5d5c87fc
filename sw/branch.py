"""The control-flow micro-benchmark of the paper's Fig.1(b): A, then B or C, then D.

Which of B and C runs is decided at run time by the sign of the first input value, read by the
control unit from DRAM. B and C write the same region, which D reads.

* DyPipe: the control program reads the condition first and commits exactly the tasks of
  A, (B or C), D; the dispatcher streams B's weights while A's last tiles still compute.
* Static: the task lists are fixed at compile time, so the branch is a drain: the program
  waits until A has finished, then reads the condition and jumps to one of two precompiled
  task lists (B then D, or C then D).
* NonePipe: the DyPipe program with every task a barrier (no overlap at all).
"""

import numpy as np

from .fc import FCLayer, alloc_vector, random_layer
from .image import DramImage
from .program import ProgramBuilder, Reg
from .schedule import emit
from .roofline import roofline
from .workload import Workload, MODES

__all__ = ["compile_branch", "random_branch"]

COND = Reg(20)


def _read_condition(pb, x_region, config):
    """COND = the sign bit of the first input value (1: negative, take C)."""
    words_per_beat = config.beat_words
    pb.li(COND, x_region.beat * words_per_beat)
    pb.emit(f"lw {COND}, 0({COND})")
    pb.emit(f"slli {COND}, {COND}, 16")
    pb.emit(f"srli {COND}, {COND}, 31")


def compile_branch(config, x, layers, *, mode="dypipe", name="branch"):
    """``layers``: dict of ``(weights, bias)`` for A, B, C (same shapes) and D."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    image = DramImage(config)
    shapes = {key: np.shape(w) for key, (w, _) in layers.items()}
    if shapes["B"] != shapes["C"]:
        raise ValueError(f"B and C must have the same shape, not {shapes['B']} and "
                         f"{shapes['C']}")
    tx = alloc_vector(image, "x", shapes["A"][1], x)
    ya, ybc, yd = (alloc_vector(image, f"{key}.y", shapes[key][0]) for key in "ABD")
    a = FCLayer(config, image, "A", tx, *layers["A"], out=ya)
    b = FCLayer(config, image, "B", ya, *layers["B"], out=ybc, first_half=a.next_half)
    c = FCLayer(config, image, "C", ya, *layers["C"], out=ybc, first_half=a.next_half)
    d = FCLayer(config, image, "D", ybc, *layers["D"], out=yd, first_half=b.next_half)
    pb = ProgramBuilder(config)
    take_c = pb.fresh_label("take_c")
    # The branch and its targets stay in one overlay segment (pb.atomic()).
    if mode != "static":
        _read_condition(pb, tx.region, config)
        emit(pb, a.steps(), mode)
        with pb.atomic():
            pb.emit(f"bne {COND}, r0, {take_c}")
            emit(pb, b.steps(), mode)
            join = pb.fresh_label("join")
            pb.emit(f"j {join}")
            pb.label(take_c)
            emit(pb, c.steps(), mode)
            pb.label(join)
        emit(pb, d.steps(), mode)
        pb.halt()
    else:
        emit(pb, a.steps(), mode)
        pb.wait()                       # the drain: nothing after the branch is known yet
        _read_condition(pb, tx.region, config)
        with pb.atomic():
            pb.emit(f"bne {COND}, r0, {take_c}")
            emit(pb, b.steps(), mode)
            emit(pb, d.steps(), mode)
            pb.halt()
            pb.label(take_c)
        emit(pb, c.steps(), mode)
        emit(pb, d.steps(), mode)
        pb.halt()

    taken = "C" if int(np.asarray(x, dtype=np.int16)[0]) < 0 else "B"
    path = (a, c if taken == "C" else b, d)
    storage = {t.region.name: image.data(t.region.name) for t in (tx, ya, ybc, yd)}
    for layer in path:
        layer.expected_into(storage)
    macs = sum(l.macs for l in path)
    compulsory = 2 * (a.n_in + sum(l.weight_elems + l.n_out for l in path))
    return Workload(name=name, mode=mode, config=config,
                    program=pb.assemble(f"<{name}>", image=image),
                    image=image, expected={t.region.name: storage[t.region.name]
                                           for t in (ya, yd)},
                    compare={t.region.name: t.mask() for t in (ya, yd)},
                    meta={"layer": "branch", "taken": taken, "macs": macs,
                          "compulsory_bytes": compulsory,
                          "roofline_cycles": roofline(config, macs, compulsory),
                          "shapes": {l.name: [l.n_out, l.n_in] for l in (a, b, c, d)}})


def random_branch(config, sizes, *, seed=0, mode="dypipe", take="B"):
    """A branch workload on layers of ``sizes`` = (in, a_out, bc_out, d_out) with random data;
    ``take`` picks the path by the sign of the first input."""
    rng = np.random.default_rng(seed)
    n_in, n_a, n_bc, n_d = sizes
    one = 1 << config.frac_bits
    x = rng.integers(0, one, n_in, dtype=np.int16)
    x[0] = -x[0] - 1 if take == "C" else x[0]
    layers = {"A": random_layer(config, rng, n_a, n_in), "B": random_layer(config, rng, n_bc, n_a),
              "C": random_layer(config, rng, n_bc, n_a), "D": random_layer(config, rng, n_d, n_bc)}
    return compile_branch(config, x, layers, mode=mode)
