"""Named workloads for ``dypipe run``: each builds a :class:`Workload` for a configuration and a
mode from a seed."""

from .branch import random_branch
from .ops import (TABLE2, conv_workload, eltwise_workload, fc_workload, op_workload,
                  pool_workload)
from .early_exit import random_early_exit
from .seq2seq import random_seq2seq
from .seqloop import random_seqloop
from .treelstm import random_treelstm

__all__ = ["WORKLOADS", "build_workload", "parse_size"]


def parse_size(text, parts, zero_last=False):
    """``"99x70"`` -> (99, 70); raises ValueError saying what was expected. ``zero_last``: the
    last part may be 0."""
    try:
        values = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        values = ()
    if (len(values) != parts or min(values[:-1] if zero_last else values, default=1) < 1
            or values[-1] < 0):
        what = ("a positive integer" if parts == 1 else
                f"{parts} positive integers joined by 'x'"
                f"{' (the last may be 0)' if zero_last else ''}")
        raise ValueError(f"size must be {what}, not {text!r}")
    return values


def _fc(config, mode, seed, size=None):
    """FC with bias and ReLU. Default: several tiles in both dimensions on ``small``, sizes not
    multiples of the array; FC1 of the paper's Table 2 (1000 x 512) on ``paper``."""
    if size:
        n_out, n_in = parse_size(size, 2)
    elif config.name == "paper":
        n_out, n_in = 1000, 512
    else:
        n_out, n_in = 99, 70
    return fc_workload(config, n_out=n_out, n_in=n_in, seed=seed, mode=mode, name="fc")


def _branch(config, mode, seed, size=None):
    """Fig.1(b): FC layers A -> (B | C) -> D; the path is the sign of the first input, which
    the seed decides."""
    if size:
        sizes = parse_size(size, 4)
    elif config.name == "paper":
        sizes = (1024, 1024, 1024, 512)
    else:
        sizes = (160, 120, 100, 40)
    return random_branch(config, sizes, seed=seed, mode=mode, take="BC"[seed % 2])


def _seqloop(config, mode, seed, size=None):
    """An RNN cell over ``sequences`` inputs of lengths uniform in 1..20 (``--size
    SEQUENCESxHIDDEN``; the input width equals the hidden width).

    Besides the steps, a run loads the weights once; padding does not multiply that, so it
    pulls DyPipe's speedup over static below the padded/real work ratio. On ``paper`` the
    default hidden width is 128, where the weights take about 2k of some 27k cycles; at 256
    they take 8k cycles of 38k."""
    if size:
        sequences, hidden = parse_size(size, 2)
    elif config.name == "paper":
        sequences, hidden = 16, 128
    else:
        sequences, hidden = 16, 8
    return random_seqloop(config, sequences=sequences, hidden=hidden, inputs=hidden, slots=6,
                          max_length=20, seed=seed, mode=mode)


def _seq2seq(cell):
    def build(config, mode, seed, size=None):
        """One encoder and one decoder layer over sentence pairs of lengths uniform in 1..20
        (``--size SENTENCESxHIDDEN``; the embedding equals the hidden width)."""
        if size:
            sentences, hidden = parse_size(size, 2)
        else:
            sentences, hidden = 16, (256 if config.name == "paper" else 8)
        return random_seq2seq(config, cell, sentences=sentences, hidden=hidden, seed=seed,
                              mode=mode, name=f"seq2seq-{cell}")
    return build


def _early_exit(take):
    def build(config, mode, seed, size=None):
        if size:
            raise ValueError("the early-exit CNN has a fixed size per preset; it takes no --size")
        return random_early_exit(config, take=take, seed=seed, mode=mode)
    return build


def _treelstm(config, mode, seed, size=None):
    """Tree-LSTM over a seeded random binary tree: ``--size LEAVES`` (default 19)."""
    (leaves,) = parse_size(size or "19", 1)
    return random_treelstm(config, leaves, seed=seed, mode=mode)


def _conv(config, mode, seed, size=None):
    """Convolution with bias and ReLU: ``--size HxWxCINxCOUTxKxSTRIDExPAD``."""
    h, w, cin, cout, k, stride, pad = parse_size(size or "9x9x12x9x3x1x1", 7, zero_last=True)
    return conv_workload(config, h=h, w=w, cin=cin, cout=cout, kernel=k, stride=stride,
                         pad=pad, mode=mode, seed=seed)


def _pool(config, mode, seed, size=None):
    """Max pooling: ``--size HxWxCxKxSTRIDE``."""
    h, w, c, k, stride = parse_size(size or "12x12x20x3x2", 5)
    return pool_workload(config, h=h, w=w, c=c, kernel=k, stride=stride, mode=mode, seed=seed)


def _eltwise(config, mode, seed, size=None):
    """Elementwise add of two vectors: ``--size N``."""
    (n,) = parse_size(size or "1000", 1)
    return eltwise_workload(config, n=n, op="add", mode=mode, seed=seed)


def _table2(op):
    def build(config, mode, seed, size=None):
        if size:
            raise ValueError(f"{op.name} has the fixed size of Table 2; it takes no --size")
        return op_workload(config, op.name, mode, seed)
    return build


#: name -> (builder, one-line description)
WORKLOADS = {
    "fc": (_fc, "fully connected layer with bias and ReLU (--size OUTxIN)"),
    "branch": (_branch, "A, then B or C by a run-time condition, then D (--size IN x A x BC x D)"),
    "seqloop": (_seqloop, "RNN cell over run-time lengths 1..20, static pads to 20 "
                          "(--size SEQUENCESxHIDDEN)"),
    **{f"seq2seq-{cell}": (_seq2seq(cell), f"seq2seq {cell.upper()}: encoder and decoder over "
                                           "run-time lengths 1..20, static pads both to 20 "
                                           "(--size SENTENCESxHIDDEN)")
       for cell in ("rnn", "lstm", "gru")},
    "treelstm": (_treelstm, "binary Tree-LSTM over a random tree read at run time "
                            "(--size LEAVES); static is a program compiled for that tree"),
    "early-exit-taken": (_early_exit(True), "a CNN with an exit classifier after its first "
                                            "block; the accelerator's gate says exit"),
    "early-exit-continue": (_early_exit(False), "the same CNN; the gate says go on through "
                                                "the second block"),
    "conv": (_conv, "convolution with bias and ReLU (--size HxWxCINxCOUTxKxSTRIDExPAD)"),
    "pool": (_pool, "max pooling (--size HxWxCxKxSTRIDE)"),
    "eltwise": (_eltwise, "elementwise add (--size N)"),
    **{op.name.lower(): (_table2(op), f"Table 2's {op.name} (scaled down off paper)")
       for op in TABLE2},
}


def build_workload(name, config, mode, *, seed=0, size=None):
    try:
        builder, _ = WORKLOADS[name]
    except KeyError:
        from .model_zoo import NETWORKS
        raise ValueError(f"unknown workload {name!r}; workloads are: "
                         f"{', '.join(sorted(WORKLOADS))}; networks: {', '.join(NETWORKS)}; "
                         f"or an ONNX file (FILE.onnx)") from None
    return builder(config, mode, seed, size)
