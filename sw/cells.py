"""Recurrent cells (RNN, LSTM, GRU) as the machine computes them, and their golden step.

A cell is a list of *gates* and a list of *vector operations*. A gate is a matrix-vector
product with bias and an activation over one part of the step's input ``[x ; h]`` (``"xh"``,
``"x"`` or ``"h"``); the PFU computes it on the MAC array (one :attr:`Op.CONV` a gate). The
vector operations combine the gates and the previous state on the vector unit, one
:attr:`Op.VEC` each. Sigmoid and tanh are the piecewise-linear table of :mod:`.pwl`:

* RNN:  ``h' = tanh(W [x; h] + b)`` (a gate, no vector operation);
* LSTM: ``i, f, o = sigmoid(W_{i,f,o} [x; h] + b)``, ``g = tanh(W_g [x; h] + b)``,
  ``c' = f*c + i*g``, ``h' = o*tanh(c')``;
* GRU:  ``r, z = sigmoid(W_{r,z} [x; h] + b)``, ``n = tanh(W_n x + b_n + r*(U_n h + c_n))``,
  ``h' = n + z*(h - n)`` (``h - n`` as ``h + n * -1.0``).

Vectors are padded to whole rows of the array (:func:`padded`) with zeros; padded weights and
biases are zero, so the padded lanes of ``h`` and ``c`` stay zero.
"""

import dataclasses

import numpy as np

from . import golden
from .isa import Act, VecFn

__all__ = ["Gate", "VecOp", "Cell", "CELLS", "padded", "random_cell_weights", "cell_step",
           "vector_ops"]


@dataclasses.dataclass(frozen=True)
class Gate:
    name: str
    act: Act
    part: str           # which part of [x; h] it reads: "xh", "x" or "h"


@dataclasses.dataclass(frozen=True)
class VecOp:
    """``dst = act(fn(a, b))`` over vectors named by the cell (gates, ``h``, ``c``, ``m``,
    ``minus_one`` and temporaries)."""
    dst: str
    fn: VecFn
    a: str
    b: str = None
    act: Act = Act.NONE


@dataclasses.dataclass(frozen=True)
class Cell:
    """``outputs``: the vectors a step leaves (``h``, then ``c`` for an LSTM), named ``h2`` and
    ``c2`` by the vector operations (a cell without them, the RNN, leaves its one gate)."""
    name: str
    gates: tuple
    ops: tuple = ()
    has_c: bool = False

    @property
    def outputs(self):
        if not self.ops:
            return (self.gates[0].name,)
        return ("h2", "c2") if self.has_c else ("h2",)

    @property
    def temporaries(self):
        """Vectors the operations write besides the outputs, in order."""
        return tuple(dict.fromkeys(op.dst for op in self.ops if op.dst not in self.outputs))

    @property
    def needs_minus_one(self):
        return any(op.b == "minus_one" for op in self.ops)

    def masked_ops(self):
        """The operations of a step whose previous state is multiplied by a 0 / 1.0 mask ``m``
        first (``h`` is masked before the gates; an LSTM's ``c`` here): static pipelining
        restarts a left-padded sequence this way."""
        if not self.has_c:
            return self.ops
        ren = {"c": "cm"}
        return (VecOp("cm", VecFn.MUL, "c", "m"),) + tuple(
            dataclasses.replace(op, a=ren.get(op.a, op.a), b=ren.get(op.b, op.b))
            for op in self.ops)

    def weight_elems(self, hidden, inputs):
        k = {"xh": inputs + hidden, "x": inputs, "h": hidden}
        return sum(hidden * k[g.part] for g in self.gates)


_MUL, _ADD, _COPY = VecFn.MUL, VecFn.ADD, VecFn.COPY

CELLS = {
    "rnn": Cell("rnn", (Gate("out", Act.TANH, "xh"),)),
    "lstm": Cell("lstm", (Gate("i", Act.SIGMOID, "xh"), Gate("f", Act.SIGMOID, "xh"),
                          Gate("o", Act.SIGMOID, "xh"), Gate("g", Act.TANH, "xh")),
                 (VecOp("fc", _MUL, "f", "c"), VecOp("ig", _MUL, "i", "g"),
                  VecOp("c2", _ADD, "fc", "ig"), VecOp("tc", _COPY, "c2", act=Act.TANH),
                  VecOp("h2", _MUL, "o", "tc")), has_c=True),
    "gru": Cell("gru", (Gate("r", Act.SIGMOID, "xh"), Gate("z", Act.SIGMOID, "xh"),
                        Gate("xn", Act.NONE, "x"), Gate("hn", Act.NONE, "h")),
                (VecOp("rhn", _MUL, "r", "hn"), VecOp("n", _ADD, "xn", "rhn", Act.TANH),
                 VecOp("nn", _MUL, "n", "minus_one"), VecOp("d", _ADD, "h", "nn"),
                 VecOp("zd", _MUL, "z", "d"), VecOp("h2", _ADD, "n", "zd"))),
}


def padded(n, config):
    """``n`` rounded up to whole rows of the array (a multiple of ``pe_rows`` and
    ``pe_cols``)."""
    q = max(config.pe_rows, config.pe_cols)
    return -(-n // q) * q


def random_cell_weights(cell, config, hidden, inputs, rng):
    """Random weights ``{gate: (W (hidden_p, part_p), b (hidden_p,))}`` over padded sizes
    (zero outside the real ``hidden`` x part), scaled so that pre-activations stay in the
    activations' useful range."""
    one = 1 << config.frac_bits
    hp, ep = padded(hidden, config), padded(inputs, config)
    real = {"xh": (inputs, hidden), "x": (inputs, 0), "h": (0, hidden)}
    weights = {}
    for g in cell.gates:
        nx, nh = real[g.part]
        scale = max(1, int(one / np.sqrt(nx + nh)))
        cols = {"xh": ep + hp, "x": ep, "h": hp}[g.part]
        w = np.zeros((hp, cols), dtype=np.int16)
        if nx:
            w[:hidden, :nx] = rng.integers(-scale, scale + 1, (hidden, nx))
        if nh:
            h0 = ep if g.part == "xh" else 0
            w[:hidden, h0:h0 + nh] = rng.integers(-scale, scale + 1, (hidden, nh))
        b = np.zeros(hp, dtype=np.int16)
        b[:hidden] = rng.integers(-one // 4, one // 4 + 1, hidden)
        weights[g.name] = (w, b)
    return weights


def cell_step(cell, config, weights, x, h, c=None, mask=None):
    """One step on padded int16 vectors, bit-exact with the machine: ``(h', c', gates)``
    (``c'`` None without a cell state). ``mask`` (0 or 1.0 per lane) multiplies ``h`` and
    ``c`` first, as a masked static step does."""
    fb, acc = config.frac_bits, config.acc_bits
    v = {}
    if mask is not None:
        h = golden.eltwise(h, mask, "mul", fb)
        if c is not None:
            c = golden.eltwise(c, mask, "mul", fb)
    parts = {"xh": np.concatenate([x, h]), "x": x, "h": h}
    for g in cell.gates:
        w, b = weights[g.name]
        v[g.name] = golden.fc(parts[g.part], w, b, fb, g.act, acc)
    gates = {g.name: v[g.name] for g in cell.gates}
    if not cell.ops:
        return gates[cell.outputs[0]], None, gates
    v.update(h=h, c=c, minus_one=np.full(len(h), -(1 << fb), dtype=np.int16))
    vector_ops(cell.ops, v, fb)
    outs = [v[name] for name in cell.outputs]
    return outs[0], (outs[1] if cell.has_c else None), gates


def vector_ops(ops, values, frac_bits):
    """Run :class:`VecOp` s on ``values`` (name -> int16 vector) as the vector unit does,
    adding each result under its name."""
    for op in ops:
        if op.fn == VecFn.COPY:
            values[op.dst] = golden.eltwise(values[op.a], 0 * values[op.a], "add", frac_bits,
                                            op.act)
        else:
            fn = {VecFn.ADD: "add", VecFn.MUL: "mul"}[op.fn]
            values[op.dst] = golden.eltwise(values[op.a], values[op.b], fn, frac_bits, op.act)
    return values
