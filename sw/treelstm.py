"""The binary Tree-LSTM (Tai et al. 2015, N-ary with N = 2) over a tree known only at run time.

Words enter at the leaves. A leaf ``k`` with word ``x``::

    i, o = sigmoid(W_{i,o} x + b),  u = tanh(W_u x + b),  c = i*u,  h = o*tanh(c)

and an inner node with children ``l`` and ``r``::

    i, f_l, f_r, o = sigmoid(U_* [h_l; h_r] + b),  u = tanh(U_u [h_l; h_r] + b)
    c = i*u + f_l*c_l + f_r*c_r,  h = o*tanh(c)

Every node writes a record ``[h | c | gates]`` to DRAM. Node ids: the leaves ``0 .. n-1``, the
inner nodes ``n .. 2n-2`` in the order the tree lists them, which is bottom-up by level
(children always before their parent, each level's nodes together; the root last). The tree
in DRAM is a word ``n`` and a word per inner node, its children's ids as two 16-bit halves.

Sizes. A vector of ``hidden`` values is padded to ``hp``, a multiple of ``pe_rows`` (NBout
blocks); in NBin it takes whole rows. The CONVs of an inner node read ``[h_l; h_r]`` as
``2 hp`` consecutive elements (``h_r`` may start inside a row), so at hidden 150 on ``paper``
``hp`` is 160 and the inner weights take 125 of SB's 128 rows; the leaf weights (75 rows)
load first and the inner ones over them when the leaves are done.

A node is six tasks on a slot (K slots, one node each at a time): ``load_in`` (its inputs into
NBin), ``gates`` (a CONV per gate into NBout), ``store_gates`` and ``load_gates`` (the gates
through DRAM into NBin, with ``c_l`` and ``c_r``), ``elt`` (the vector operations) and
``store_out``. The dispatcher overlaps the nodes that do not depend on each other.

* DyPipe reads ``n`` and the inner nodes' children from DRAM (one LW a node) and spawns their
  tasks: one program for every tree.
* Static pipelining cannot run a structure it does not know; the reference here is a static
  program compiled for the one tree (every pointer an immediate, the same order).
* NonePipe: the DyPipe program with every task a barrier.
"""

import numpy as np

from . import golden
from .cells import VecOp, vector_ops
from .fc import block_weights, barrier, footprint
from .functions import PARAM_BLOCK, STORE_2D, dma_params, dma_task
from .image import DramImage
from .isa import Act, Buf, Space, Unit, VecFn, CONV_PARAMS, VEC_PARAMS
from .program import ProgramBuilder, Reg, module_function, ARG
from .roofline import roofline
from .schedule import emit
from .workload import Workload, CompileError, MODES

__all__ = ["compile_treelstm", "random_tree", "random_treelstm", "LEAF_GATES", "NODE_GATES"]

LEAF_GATES = (("i", Act.SIGMOID), ("o", Act.SIGMOID), ("u", Act.TANH))
NODE_GATES = (("i", Act.SIGMOID), ("fl", Act.SIGMOID), ("fr", Act.SIGMOID), ("o", Act.SIGMOID),
              ("u", Act.TANH))
#: The vector operations; ``h2``, ``c2`` are the node's new state.
LEAF_OPS = (VecOp("c2", VecFn.MUL, "i", "u"), VecOp("tc", VecFn.COPY, "c2", act=Act.TANH),
            VecOp("h2", VecFn.MUL, "o", "tc"))
NODE_OPS = (VecOp("iu", VecFn.MUL, "i", "u"), VecOp("flc", VecFn.MUL, "fl", "cl"),
            VecOp("frc", VecFn.MUL, "fr", "cr"), VecOp("s", VecFn.ADD, "iu", "flc"),
            VecOp("c2", VecFn.ADD, "s", "frc"), VecOp("tc", VecFn.COPY, "c2", act=Act.TANH),
            VecOp("h2", VecFn.MUL, "o", "tc"))
SLOTS = 4


def random_tree(leaves, rng):
    """A random binary tree over ``leaves`` words (each split point uniform): the inner nodes'
    ``(left, right)`` ids, bottom-up by level."""
    nodes = []                  # (height, left, right) with ids assigned afterwards

    def build(lo, hi):          # words lo .. hi-1; returns ("leaf", k) or ("node", index)
        if hi - lo == 1:
            return ("leaf", lo), 0
        split = int(rng.integers(lo + 1, hi))
        (left, hl), (right, hr) = build(lo, split), build(split, hi)
        nodes.append((max(hl, hr) + 1, left, right))
        return ("node", len(nodes) - 1), max(hl, hr) + 1
    build(0, leaves)
    order = sorted(range(len(nodes)), key=lambda j: (nodes[j][0], j))
    ident = {j: leaves + pos for pos, j in enumerate(order)}
    node_id = lambda ref: ref[1] if ref[0] == "leaf" else ident[ref[1]]  # noqa: E731
    return [(node_id(nodes[j][1]), node_id(nodes[j][2])) for j in order]


class _Plan:
    def __init__(self, config, hidden, embed, slots):
        R, C, V = config.pe_rows, config.pe_cols, config.beat_elems
        if R % V:
            raise CompileError(f"treelstm needs pe_rows ({R}) to be a multiple of the beat "
                               f"({V} elements)")
        self.R, self.C, self.V = R, C, V
        self.hp = -(-hidden // R) * R
        self.rows_h = -(-self.hp // C)
        self.vec = self.rows_h * C                      # NBin lanes (and record slot) a vector
        self.ep = -(-embed // C) * C
        self.blocks = self.hp // R
        self.kc = {"leaf": self.ep // C, "node": -(-2 * self.hp // C)}
        self.gates = {"leaf": LEAF_GATES, "node": NODE_GATES}
        self.ops = {"leaf": LEAF_OPS, "node": NODE_OPS}
        self.sb_rows = {kind: len(self.gates[kind]) * self.blocks * self.kc[kind]
                        for kind in ("leaf", "node")}
        for kind, rows in self.sb_rows.items():
            if rows > config.sb_rows:
                raise CompileError(f"treelstm: the {kind} weights take {rows} SB rows, SB has "
                                   f"{config.sb_rows}")
        self.rec = (2 + len(NODE_GATES)) * self.vec          # [h | c | gates] in elements
        # NBin rows of a slot, per kind: inputs, gates, (c_l, c_r,) temporaries, h2, c2.
        self.row = {}
        size = 0
        for kind in ("leaf", "node"):
            names = [g for g, _ in self.gates[kind]] + (["cl", "cr"] if kind == "node" else [])
            names += [op.dst for op in self.ops[kind] if op.dst not in ("h2", "c2")]
            names += ["h2", "c2"]
            r = self.kc[kind]
            rows = {"in": 0}
            for n in names:
                rows[n], r = r, r + self.rows_h
            self.row[kind] = rows
            size = max(size, r)
        self.slot_rows = size
        self.gate_blocks = len(NODE_GATES) * self.blocks
        self.bias_row = slots * self.gate_blocks            # leaf biases, then the node ones
        nbin, nbout = slots * size, self.bias_row + (len(LEAF_GATES) + len(NODE_GATES)) \
            * self.blocks
        if nbin > config.nbin_rows or nbout > config.nbout_rows:
            raise CompileError(f"treelstm: {slots} slots need {nbin} NBin and {nbout} NBout "
                               f"rows; there are {config.nbin_rows} and {config.nbout_rows}")


def _functions(p, tag):
    """The module functions of a leaf and of an inner node (sizes built in)."""
    V, C = p.V, p.C
    nb = C // V
    hb = p.hp // V                                     # beats of a vector's real part
    fns = {}

    @module_function(Unit.IO, "x_dram", "nbin", name=f"{tag}_leaf_in")
    def leaf_in(f, q):
        f.dload_span(Buf.NBIN, q.x_dram, q.nbin, p.ep // V)
    fns["leaf", "load_in"] = leaf_in

    @module_function(Unit.IO, "l_dram", "r_dram", "nbin", name=f"{tag}_node_in")
    def node_in(f, q):
        """[h_l; h_r] as 2 hp consecutive elements."""
        f.dload_span(Buf.NBIN, q.l_dram, q.nbin, hb)
        f.emit(f"addi r1, {q.nbin}, {hb}")
        f.dload_span(Buf.NBIN, q.r_dram, Reg(1), hb)
    fns["node", "load_in"] = node_in

    for kind in ("leaf", "node"):
        gates, rows = p.gates[kind], p.row[kind]

        @module_function(Unit.PFU, "el", "nbout", "w", "b", name=f"{tag}_{kind}_gates")
        def conv_gates(f, q, gates=gates, kind=kind):
            r = [Reg(PARAM_BLOCK + i) for i in range(len(CONV_PARAMS))]
            fixed = dict(m_blocks=p.blocks, kh=1, x_count=1, y_count=1,
                         k_chunks=p.kc[kind])
            for i, name in enumerate(CONV_PARAMS):
                if name in fixed or i >= 6:
                    f.li(r[i], fixed.get(name, 0))
            f.emit(f"addi {r[1]}, {q.el}, 0")
            for g in range(len(gates)):
                f.emit(f"addi {r[0]}, {q.nbout}, {g * p.blocks}")
                f.emit(f"addi {r[2]}, {q.w}, {g * p.blocks * p.kc[kind]}")
                f.emit(f"addi {r[5]}, {q.b}, {g * p.blocks}")
                f.conv(r[0], bias=True, act=gates[g][1])
        fns[kind, "gates"] = conv_gates

        @module_function(Unit.PFU, "row", name=f"{tag}_{kind}_elt")
        def elt(f, q, ops=p.ops[kind], rows=rows):
            r = [Reg(PARAM_BLOCK + i) for i in range(len(VEC_PARAMS))]
            fixed = dict(chunks=p.rows_h, kh=1, kw=1, x_count=1, y_count=1)
            for i, name in enumerate(VEC_PARAMS[3:], start=3):
                f.li(r[i], fixed.get(name, 0))
            for op in ops:
                for reg, name in zip(r, (op.dst, op.a, op.b or op.a)):
                    f.emit(f"addi {reg}, {q.row}, {rows[name]}")
                f.vec(r[0], op.fn, op.act)
        fns[kind, "elt"] = elt

        n_gates = len(gates)

        @module_function(Unit.IO, "nbin", "rec", "l_rec", "r_rec", name=f"{tag}_{kind}_gates_in")
        def gates_in(f, q, n_gates=n_gates, rows=rows, kind=kind):
            """The gates (one slot of the record each) and, for a node, c_l and c_r."""
            f.emit(f"addi r1, {q.rec}, {2 * p.vec // V}")
            f.emit(f"addi r{PARAM_BLOCK}, {q.nbin}, {rows['i'] * nb}")
            f.dload_span(Buf.NBIN, Reg(1), Reg(PARAM_BLOCK), n_gates * p.vec // V)
            if kind == "node":
                for src, name in ((q.l_rec, "cl"), (q.r_rec, "cr")):
                    f.emit(f"addi r1, {src}, {p.vec // V}")
                    f.emit(f"addi r{PARAM_BLOCK}, {q.nbin}, {rows[name] * nb}")
                    f.dload_span(Buf.NBIN, Reg(1), Reg(PARAM_BLOCK), hb)
        fns[kind, "load_gates"] = gates_in

        @module_function(Unit.STORE, "nbin", "rec", name=f"{tag}_{kind}_out")
        def store_out(f, q, rows=rows):
            """h and c into the first two slots of the record."""
            f.emit(f"addi r1, {q.nbin}, {rows['h2'] * nb}")
            f.dstore_span(Buf.NBIN, q.rec, Reg(1), 2 * p.vec // V)
        fns[kind, "store_out"] = store_out
    return fns


def compile_treelstm(config, tree, words, weights, *, hidden, embed, slots=SLOTS,
                     mode="dypipe", name="treelstm"):
    """``tree``: the inner nodes' ``(left, right)`` ids, bottom-up by level (:func:`random_tree`);
    ``words``: (leaves, embed) int16; ``weights``: ``{"leaf": {gate: (W, b)}, "node": {gate:
    (U, b)}}`` with W (hidden, embed), U (hidden, 2 hidden) over ``[h_l; h_r]``, b (hidden,)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    words = np.asarray(words, np.int16)
    n = len(words)
    if len(tree) != n - 1:
        raise ValueError(f"a binary tree over {n} leaves has {n - 1} inner nodes, not "
                         f"{len(tree)}")
    seen = set()
    for j, (l, r) in enumerate(tree, start=n):
        if not (0 <= l < j and 0 <= r < j) or l in seen or r in seen or l == r:
            raise ValueError(f"inner node {j}: children ({l}, {r}) must be distinct nodes "
                             f"listed before it, each the child of one node")
        seen.update((l, r))
    if n > 1 << 15:
        raise ValueError(f"at most {1 << 15} leaves (ids are 16-bit), not {n}")
    slots = max(1, min(slots, n))
    p = _Plan(config, hidden, embed, slots)
    R, C, V, hp = p.R, p.C, p.V, p.hp

    # -- DRAM ---------------------------------------------------------------------------
    image = DramImage(config)

    def gate_weights(kind, w):
        """One kind's weights, gates consecutive, over the padded input."""
        cols = p.kc[kind] * C
        blocks = []
        for g, _ in p.gates[kind]:
            full = np.zeros((hp, cols), np.int16)
            mat = np.asarray(w[g][0], np.int16)
            if kind == "leaf":
                full[:hidden, :embed] = mat
            else:
                full[:hidden, :hidden] = mat[:, :hidden]
                full[:hidden, hp:hp + hidden] = mat[:, hidden:]
            blocks.append(block_weights(full, R, C))
        return np.concatenate(blocks)
    rw = {kind: image.alloc(f"w_{kind}", p.sb_rows[kind] * R * C,
                            gate_weights(kind, weights[kind])) for kind in ("leaf", "node")}
    bias = np.zeros((len(LEAF_GATES) + len(NODE_GATES), hp), np.int16)
    for k, (kind, g) in enumerate([("leaf", g) for g, _ in LEAF_GATES]
                                  + [("node", g) for g, _ in NODE_GATES]):
        bias[k, :hidden] = weights[kind][g][1]
    rb = image.alloc("bias", bias.size, bias)
    xs = np.zeros((n, p.ep), np.int16)
    xs[:, :embed] = words
    rx = image.alloc("x", xs.size, xs)
    rrec = image.alloc("rec", (2 * n - 1) * p.rec)
    packed = np.array([n] + [(r << 16) | l for l, r in tree], dtype="<u4")
    rtree = image.alloc("tree", 2 * len(packed), packed.view(np.int16))

    # -- tasks --------------------------------------------------------------------------
    fns = _functions(p, f"tree_{hidden}x{embed}_{slots}")
    fp = barrier if mode == "nonepipe" else footprint
    nbb, nob = C // V, R // V
    sb_beats = R * C // V
    rec_beats = p.rec // V
    bias_fp = (Space.NBOUT, p.bias_row * nob, rb.beats)
    w_fp = {kind: (Space.SB, 0, p.sb_rows[kind] * sb_beats) for kind in ("leaf", "node")}
    b_row = {"leaf": p.bias_row, "node": p.bias_row + len(LEAF_GATES) * p.blocks}

    def load(kind):
        """The kind's weights into SB (the node ones once every leaf has read the leaf
        ones: their footprints say so)."""
        emit(pb, [[dma_task("load", Buf.SB, dram_addr=rw[kind].beat, buf_addr=0,
                            row_beats=rw[kind].beats, writes=(w_fp[kind],))]], mode)

    def fields(k, kind, task):
        """Slot ``k``'s template of ``task``: ARG[0] the node's record, ARG[1] its left
        child's record (a leaf: its word), ARG[2] its right child's."""
        row, rows = k * p.slot_rows, p.row[kind]
        n_gates = len(p.gates[kind])
        nbout = k * p.gate_blocks
        own, left, right = ARG[0], ARG[1], ARG[2]
        in_fp = (Space.NBIN, row * nbb, p.kc[kind] * nbb)
        gate_out = (Space.NBOUT, nbout * nob, n_gates * p.blocks * nob)
        elt_in = (Space.NBIN, (row + rows["i"]) * nbb, (rows["h2"] - rows["i"]) * nbb)
        out = (Space.NBIN, (row + rows["h2"]) * nbb, 2 * p.rows_h * nbb)
        rec_gates = (Space.DRAM, own + 2 * p.vec // V, n_gates * p.vec // V)
        if task == "load_in":
            if kind == "leaf":
                return dict(x_dram=left, nbin=row * nbb, **fp(writes=[in_fp]))
            return dict(l_dram=left, r_dram=right, nbin=row * nbb,
                        **fp(reads=[(Space.DRAM, left, p.hp // V),
                                    (Space.DRAM, right, p.hp // V)], writes=[in_fp]))
        if task == "gates":
            return dict(el=row * C, nbout=nbout, w=0, b=b_row[kind],
                        **fp(reads=[in_fp, w_fp[kind]], writes=[gate_out]))
        if task == "store_gates":
            # Gate g of the NBout rows into slot g of the record: one 2-D transfer.
            dma = dma_params(dram_addr=own + 2 * p.vec // V, buf_addr=nbout * nob,
                             rows=n_gates, row_beats=p.hp // V, dram_stride=p.vec // V,
                             buf_stride=p.blocks * nob)
            return dict(**{k: dma[k] for k in STORE_2D[Buf.NBOUT].params},
                        **fp(reads=[gate_out], writes=[rec_gates]))
        if task == "load_gates":
            reads = [rec_gates]
            if kind == "node":
                reads += [(Space.DRAM, left + p.vec // V, p.hp // V),
                          (Space.DRAM, right + p.vec // V, p.hp // V)]
            return dict(nbin=row * nbb, rec=own, l_rec=left if kind == "node" else 0,
                        r_rec=right if kind == "node" else 0,
                        **fp(reads=reads, writes=[elt_in]))
        if task == "elt":
            return dict(row=row, **fp(reads=[elt_in], writes=[elt_in, out]))
        if task == "store_out":
            return dict(nbin=row * nbb, rec=own,
                        **fp(reads=[out], writes=[(Space.DRAM, own, 2 * p.vec // V)]))
        raise AssertionError(task)

    tasks = ("load_in", "gates", "store_gates", "load_gates", "elt", "store_out")
    function = {(kind, t): (STORE_2D[Buf.NBOUT] if t == "store_gates" else fns[kind, t])
                for kind in ("leaf", "node") for t in tasks}
    templates = {}

    def spawn(k, kind, regs):
        for task in tasks:
            t = templates.get((k, kind, task))
            if t is None or not pb.holds(t):
                t = templates[k, kind, task] = pb.define(function[kind, task],
                                                         **fields(k, kind, task))
            pb.spawn(t, *regs[:t.operands])

    def define(k, kind):
        """Slot ``k``'s templates for ``kind`` (before a loop spawns them)."""
        for task in tasks:
            templates[k, kind, task] = pb.define(function[kind, task], **fields(k, kind, task))

    pb = ProgramBuilder(config)
    emit(pb, [[dma_task("load", Buf.NBOUT, dram_addr=rb.beat, buf_addr=bias_fp[1],
                        row_beats=rb.beats, writes=(bias_fp,))]], mode)
    own, left, right = Reg(5), Reg(6), Reg(7)
    if mode == "static":
        load("leaf")
        for i in range(n):
            pb.li(own, rrec.beat + i * rec_beats)
            pb.li(left, rx.beat + i * p.ep // V)
            spawn(i % slots, "leaf", (own, left, right))
            pb.boundary()
        load("node")
        for j, (l, r) in enumerate(tree, start=n):
            pb.li(own, rrec.beat + j * rec_beats)
            pb.li(left, rrec.beat + l * rec_beats)
            pb.li(right, rrec.beat + r * rec_beats)
            spawn((j - n) % slots, "node", (own, left, right))
            pb.boundary()
    else:
        with pb.atomic():
            _walk(pb, slots, define, spawn, load, rrec.beat, rec_beats, rx.beat, p.ep // V,
                  rtree.beat * config.beat_words, own, left, right)
    pb.halt()

    # -- golden -------------------------------------------------------------------------
    fb, acc = config.frac_bits, config.acc_bits
    h = np.zeros((2 * n - 1, hidden), np.int16)
    c = np.zeros((2 * n - 1, hidden), np.int16)
    gates_out = {}

    def step(kind, x, cl=None, cr=None):
        v = {g: golden.fc(x, weights[kind][g][0], weights[kind][g][1], fb, act, acc)
             for g, act in p.gates[kind]}
        gates = dict(v)
        out = vector_ops(p.ops[kind], {**v, "cl": cl, "cr": cr}, fb)
        return out["h2"], out["c2"], gates

    for i in range(n):
        h[i], c[i], gates_out[i] = step("leaf", words[i, :embed])
    for j, (l, r) in enumerate(tree, start=n):
        h[j], c[j], gates_out[j] = step("node", np.concatenate([h[l], h[r]]), c[l], c[r])
    expected = np.zeros((2 * n - 1, p.rec), np.int16)
    compare = np.zeros_like(expected, dtype=bool)
    for j in range(2 * n - 1):
        kind = "leaf" if j < n else "node"
        expected[j, :hidden], expected[j, p.vec:p.vec + hidden] = h[j], c[j]
        compare[j, :hidden] = compare[j, p.vec:p.vec + hidden] = True
        for g, (gate, _) in enumerate(p.gates[kind]):
            at = (2 + g) * p.vec
            expected[j, at:at + hidden] = gates_out[j][gate]
            compare[j, at:at + hidden] = True

    macs = n * len(LEAF_GATES) * hidden * embed + (n - 1) * len(NODE_GATES) * hidden * 2 * hidden
    weight_elems = sum(np.asarray(w).size for kind in weights.values() for w, b in kind.values())
    compulsory = 2 * (weight_elems + n * embed + (2 * n - 1) * 2 * hidden)
    depth = _depth(n, tree)
    meta = {"layer": "treelstm", "leaves": n, "hidden": hidden, "embed": embed, "slots": slots,
            "depth": depth, "tree": [list(pair) for pair in tree], "macs": macs,
            "compulsory_bytes": compulsory, "roofline_cycles": roofline(config, macs,
                                                                        compulsory)}
    return Workload(name=name, mode=mode, config=config,
                    program=pb.assemble(f"<{name}>", image=image), image=image,
                    expected={"rec": expected.reshape(-1)},
                    compare={"rec": compare.reshape(-1)}, meta=meta)


def _depth(n, tree):
    height = [0] * n
    for l, r in tree:
        height.append(max(height[l], height[r]) + 1)
    return height[-1] if tree else 0


def _walk(pb, slots, define, spawn, load, rec_base, rec_beats, x_base, x_beats, tree_word,
          own, left, right):
    """The run-time walk: read n, spawn a leaf per word (slots in turn), then read each inner
    node's children (one LW: two 16-bit ids) and spawn it. The first round of each phase is
    unrolled and defines each slot's templates just before its first node, so that the first
    tasks start at once; then loops of ``slots`` nodes, one per slot."""
    count, i, tmp, ptr = Reg(2), Reg(3), Reg(4), Reg(8)
    pb.li(tmp, tree_word)
    pb.emit(f"lw {count}, 0({tmp})")                   # n
    load("leaf")
    pb.li(i, 0)
    pb.li(own, rec_base)
    pb.li(left, x_base)

    def leaf(k):
        spawn(k, "leaf", (own, left, right))
        pb.emit(f"addi {i}, {i}, 1")
        pb.emit(f"addi {own}, {own}, {rec_beats}")
        pb.emit(f"addi {left}, {left}, {x_beats}")

    def node(k):
        pb.emit(f"lw {tmp}, 0({ptr})")
        pb.emit(f"andi {left}, {tmp}, 0xffff")
        pb.emit(f"srli {right}, {tmp}, 16")
        pb.li(tmp, rec_beats)
        pb.emit(f"mul {left}, {left}, {tmp}")
        pb.emit(f"mul {right}, {right}, {tmp}")
        pb.li(tmp, rec_base)
        pb.emit(f"add {left}, {left}, {tmp}")
        pb.emit(f"add {right}, {right}, {tmp}")
        spawn(k, "node", (own, left, right))
        pb.emit(f"addi {i}, {i}, 1")
        pb.emit(f"addi {ptr}, {ptr}, 1")
        pb.emit(f"addi {own}, {own}, {rec_beats}")

    for kind, body in (("leaf", leaf), ("node", node)):
        if kind == "node":
            load("node")
            pb.emit(f"addi {count}, {count}, -1")      # n - 1 inner nodes, after the leaves
            pb.li(i, 0)
            pb.li(ptr, tree_word + 1)
        done = pb.fresh_label(f"{kind}s_done")
        for k in range(slots):                          # the first round defines
            pb.emit(f"bge {i}, {count}, {done}")
            define(k, kind)
            body(k)
        loop = pb.label(pb.fresh_label(f"{kind}s"))
        for k in range(slots):
            pb.emit(f"bge {i}, {count}, {done}")
            body(k)
        pb.emit(f"j {loop}")
        pb.label(done)


def random_treelstm(config, leaves, *, hidden=None, embed=None, seed=0, mode="dypipe",
                    name=None):
    """A seeded random tree over ``leaves`` random words, random weights; hidden 150 and
    embedding 300 on ``paper`` (Tai et al.), 12 and 20 elsewhere."""
    paper = config.name == "paper"
    hidden = hidden or (150 if paper else 12)
    embed = embed or (300 if paper else 20)
    rng = np.random.default_rng(seed)
    one = 1 << config.frac_bits
    tree = random_tree(leaves, rng)
    words = rng.integers(-one, one, (leaves, embed), dtype=np.int16)

    def gate(k):
        scale = max(1, int(one / np.sqrt(k)))
        return (rng.integers(-scale, scale + 1, (hidden, k), dtype=np.int16),
                rng.integers(-one // 4, one // 4 + 1, hidden, dtype=np.int16))
    weights = {"leaf": {g: gate(embed) for g, _ in LEAF_GATES},
               "node": {g: gate(2 * hidden) for g, _ in NODE_GATES}}
    return compile_treelstm(config, tree, words, weights, hidden=hidden, embed=embed,
                            mode=mode, name=name or f"treelstm-{leaves}")
