"""A run-time exit (BranchyNet-style): a small CNN whose first block feeds an exit classifier.
The accelerator computes the exit decision; the control program reads it and either stops or
runs the second block and the final classifier.

Network (all convolutions 3x3, stride 1, padding 1, ReLU)::

    x -> conv1 -> conv2 -> maxpool 2x2 -> p1
    p1 -> global average pool -> exit FC: [logits (classes) | gate | flag]
    p1 -> conv3 -> conv4 -> global average pool -> final FC: logits (classes)

The exit is taken when the gate is positive. The flag neuron has no weights and no bias, so
it computes exactly 0; its DRAM word starts as -32768, so the control unit knows the exit
classifier's output has landed when the flag reads 0 (gate and flag share one 32-bit word).

* Static pipelining drains at the branch: WAIT, read the gate, halt or run block 2.
* DyPipe commits block 1 and the exit classifier, then block 2's first loads (they read only
  ``p1`` and weights, whatever the decision; the layers are placed in the buffers as a
  network's are, so these loads write nothing the exit classifier uses and run beside it),
  waits until at most those loads are unfinished (WAITN) and reads the gate, polling the flag
  (if a load finished before the exit classifier's store, the wait ended early and the read
  repeats); then halts, or goes on with block 2 without a drain. Waiting for the loads too
  (WAIT) cost a taken exit the loads' last cycles: once the dispatcher let tasks run their
  prologues before their conflicts cleared, the classifier's store landed before them.
* NonePipe: the DyPipe program with every task a barrier.
"""

import numpy as np

from .conv import ConvLayer
from .fc import FCLayer, alloc_vector
from .image import DramImage
from .isa import Act, Unit
from .network import compose, place
from .pool import PoolLayer
from .program import Reg
from .schedule import emit
from .tensor import alloc_tensor
from .workload import MODES

__all__ = ["compile_early_exit", "random_early_exit", "SIZES"]

#: preset -> (input h, w, c; block 1 channels; block 2 channels; classes)
SIZES = {"paper": (32, 32, 16, 64, 128, 10), "small": (8, 8, 4, 8, 16, 10)}

_SENTINEL = -32768
_WORD, _FLAG = Reg(20), Reg(21)


def _layers(config, image, x, params, classes):
    """Block 1 with the exit classifier, and block 2 with the final one."""
    h, w, cin = x.shape
    c1, c2 = params["conv1"][0].shape[0], params["conv3"][0].shape[0]
    tx = alloc_tensor(image, "x", h, w, cin, pad=1, data=x)
    a1 = alloc_tensor(image, "a1", h, w, c1, pad=1)
    a2 = alloc_tensor(image, "a2", h, w, c1)
    p1 = alloc_tensor(image, "p1", h // 2, w // 2, c1, pad=1)
    g1 = alloc_tensor(image, "g1", 1, 1, c1)
    n_exit = classes + 2
    flag_init = np.zeros(n_exit, np.int16)
    flag_init[classes + 1] = _SENTINEL
    y_exit = alloc_vector(image, "y_exit", n_exit, flag_init)
    a3 = alloc_tensor(image, "a3", h // 2, w // 2, c2, pad=1)
    a4 = alloc_tensor(image, "a4", h // 2, w // 2, c2)
    g2 = alloc_tensor(image, "g2", 1, 1, c2)
    y = alloc_vector(image, "y", classes)
    conv = lambda name, src, dst: ConvLayer(config, image, name, src, *params[name],  # noqa: E731
                                            out=dst)
    c1l, c2l = conv("conv1", tx, a1), conv("conv2", a1, a2)
    pool = PoolLayer(config, "pool1", a2, kernel=2, stride=2, out=p1.view())
    gp1 = PoolLayer(config, "gpool1", p1.view(), kernel=(h // 2, w // 2), stride=1, kind="avg",
                    out=g1)
    exit_fc = FCLayer(config, image, "exit", g1, *params["exit"], Act.NONE, out=y_exit)
    c3l, c4l = conv("conv3", p1, a3), conv("conv4", a3, a4)
    gp2 = PoolLayer(config, "gpool2", a4, kernel=(h // 2, w // 2), stride=1, kind="avg",
                    out=g2)
    final = FCLayer(config, image, "final", g2, *params["final"], Act.NONE, out=y,
                    first_half=exit_fc.next_half)
    return [c1l, c2l, pool, gp1, exit_fc], [c3l, c4l, gp2, final], y_exit


def compile_early_exit(config, x, params, *, classes=10, mode="dypipe", name="early-exit"):
    """``x``: (h, w, c) int16 input; ``params``: ``{layer: (weights, bias)}`` for conv1 ..
    conv4 (OIHW), exit (classes + 2 outputs: logits, gate, flag; the flag's row and bias must
    be zero) and final."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if classes % 2:
        raise ValueError(f"classes must be even (gate and flag share a word), not {classes}")
    w_exit, b_exit = params["exit"]
    if w_exit.shape[0] != classes + 2 or np.any(w_exit[-1]) or b_exit[-1]:
        raise ValueError("the exit classifier has classes + 2 outputs, the last (the flag) "
                         "with zero weights and bias")
    image = DramImage(config)
    block1, block2, y_exit = _layers(config, image, np.asarray(x, np.int16), params, classes)
    # Each layer in the buffer halves that keep its first tasks clear of the last ones before
    # it, as a network's are: so block 2's first loads do not wait for the exit classifier.
    place(block1 + block2)
    word = y_exit.region.beat * config.beat_words + classes // 2

    def read_decision(pb):
        """_WORD = the gate (sign-extended); loops until the flag says the word is written."""
        poll = pb.label(pb.fresh_label("poll"))
        pb.li(_WORD, word)
        pb.emit(f"lw {_WORD}, 0({_WORD})")
        pb.emit(f"srai {_FLAG}, {_WORD}, 16")
        pb.li(Reg(22), _SENTINEL)
        pb.emit(f"beq {_FLAG}, r22, {poll}")
        pb.emit(f"slli {_WORD}, {_WORD}, 16")
        pb.emit(f"srai {_WORD}, {_WORD}, 16")

    steps2 = [l.steps() for l in block2]
    first = steps2[0][0]
    prefetch = [t for t in first if t.fn.unit == Unit.IO]

    def program(pb, layers, mode):
        for layer in block1:
            emit(pb, layer.steps(), mode)
        done = pb.fresh_label("exit")
        if mode == "static":
            pb.wait()                        # the drain: nothing after the branch is known
            with pb.atomic():
                read_decision(pb)
                pb.emit(f"blt r0, {_WORD}, {done}")
                for s in steps2:
                    emit(pb, s, mode)
                pb.label(done)
        else:
            with pb.atomic():
                emit(pb, [prefetch], mode)
                # The exit classifier and the loads beside it.
                pb.wait(len(prefetch))
                read_decision(pb)
                pb.emit(f"blt r0, {_WORD}, {done}")
                rest = [[t for t in first if t not in prefetch]] + steps2[0][1:]
                emit(pb, rest, mode)
                for s in steps2[1:]:
                    emit(pb, s, mode)
                pb.label(done)
        pb.halt()

    # Which way the machine goes: the golden exit classifier on the golden block 1.
    storage = {t.region.name: image.data(t.region.name)
               for l in block1 for t in (*l.inputs, l.out)}
    for layer in block1:
        layer.expected_into(storage)
    y_gate = int(storage["y_exit"][classes])
    taken = y_gate > 0
    path = block1 + ([] if taken else block2)
    return compose(config, name, mode, image, path, program=program,
                   meta={"layer": "early-exit", "taken": taken, "gate": y_gate,
                         "classes": classes, "prefetched_tasks": len(prefetch)})


def random_early_exit(config, *, take=True, seed=0, mode="dypipe", name=None):
    """Random input and weights at the preset's sizes; the gate's bias makes the exit taken
    (``take``) or not."""
    h, w, cin, c1, c2, classes = SIZES.get(config.name, SIZES["small"])
    rng = np.random.default_rng(seed)
    one = 1 << config.frac_bits

    def conv(cout, cin_):
        scale = max(1, int(one / np.sqrt(9 * cin_)))
        return (rng.integers(-scale, scale + 1, (cout, cin_, 3, 3), dtype=np.int16),
                rng.integers(-one // 8, one // 8, cout, dtype=np.int16))

    def fc(n_out, n_in):
        scale = max(1, int(one / np.sqrt(n_in)))
        return (rng.integers(-scale, scale + 1, (n_out, n_in), dtype=np.int16),
                rng.integers(-one // 8, one // 8, n_out, dtype=np.int16))
    params = {"conv1": conv(c1, cin), "conv2": conv(c1, c1), "conv3": conv(c2, c1),
              "conv4": conv(c2, c2), "final": fc(classes, c2)}
    w_exit, b_exit = fc(classes + 2, c1)
    w_exit[-1], b_exit[-1] = 0, 0                     # the flag
    w_exit[-2] = 0                                     # the gate: its bias decides
    b_exit[-2] = one if take else -one
    params["exit"] = (w_exit, b_exit)
    x = rng.integers(-one, one, (h, w, cin), dtype=np.int16)
    return compile_early_exit(config, x, params, classes=classes, mode=mode,
                              name=name or f"early-exit-{'taken' if take else 'continue'}")
