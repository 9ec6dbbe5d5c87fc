"""The one shape of every layer.

A layer is placed in a DRAM image with its weights, reads one or more :class:`~.tensor.Tensor`
views and writes channels ``channel`` .. ``channel + out_channels`` of an output tensor (a
channel slice of a wider tensor is concat by layout). Every layer offers:

* :meth:`Layer.steps`: its tasks as data, a list of steps, each a list of
  :class:`~.schedule.Task` (:func:`.schedule.emit` turns them into a static, DyPipe or
  NonePipe program);
* :meth:`Layer.golden`: its output values from its inputs' values, bit-exact with the machine;
* :meth:`Layer.meta`: what it is, its MACs, weight bytes, compulsory DRAM traffic and roofline.

The compulsory traffic moves every input element some output needs, every weight and bias, and
every output exactly once (padding is not traffic; a stride larger than the window skips some
inputs, which are not compulsory either).
"""

import numpy as np

from .isa import Space
from .roofline import roofline

__all__ = ["Layer", "covered"]


def covered(n, pad, kernel, stride, out):
    """How many of ``n`` input rows (or columns) some window reads, with ``pad`` padding before
    them (a stride larger than the kernel skips some)."""
    return len({o * stride + k - pad for o in range(out) for k in range(kernel)}
               & set(range(n)))


class Layer:
    """Base of every layer. Members
    -------
    config, name
    inputs : tuple of Tensor views it reads (padding as the layer reads it)
    out : Tensor it writes (its interior), from channel ``channel`` on
    act : Act applied on write-back
    """

    kind = "layer"
    #: Mirror every on-chip region to the other end of its buffer (:meth:`place`). A network
    #: flips a layer when that keeps its first tasks' regions clear of the last ones of the
    #: layer before it, so that it can start loading while that one computes.
    flip = False

    def __init__(self, config, name, inputs, out, channel=0):
        self.config, self.name = config, name
        # A layer writes the interior, whatever padding the view it was given has.
        self.inputs, self.out, self.channel = tuple(inputs), out.view(), channel

    # -- what each layer defines -------------------------------------------------------------

    def steps(self):
        raise NotImplementedError

    def golden(self, *inputs):
        """The (oh, ow, out_channels) int16 output from each input view's padded values."""
        raise NotImplementedError

    @property
    def out_shape(self):
        """(h, w, channels) this layer writes."""
        raise NotImplementedError

    @property
    def macs(self):
        return 0

    @property
    def weight_elems(self):
        """Weights and bias values it reads from DRAM."""
        return 0

    def input_elems(self):
        """Input elements some output needs (compulsory reads)."""
        return sum(t.h * t.w * t.c for t in self.inputs)

    def details(self):
        """Layer-specific metadata (shapes, tiling)."""
        return {}

    # -- shared ------------------------------------------------------------------------------

    def place(self, space, base, size):
        """The first row of a region of ``size`` rows that the layer would put at row ``base``
        of buffer ``space``: ``base`` itself, or its mirror image when the layer is flipped."""
        if not self.flip:
            return base
        total = {Space.NBIN: self.config.nbin_rows, Space.SB: self.config.sb_rows,
                 Space.NBOUT: self.config.nbout_rows}[Space(space)]
        return total - base - size

    @property
    def weight_bytes(self):
        return 2 * self.weight_elems

    @property
    def compulsory_bytes(self):
        h, w, c = self.out_shape
        return 2 * (self.input_elems() + self.weight_elems + h * w * c)

    @property
    def roofline_cycles(self):
        return roofline(self.config, self.macs, self.compulsory_bytes)

    def meta(self):
        return {"layer": self.kind, "name": self.name, **self.details(), "macs": self.macs,
                "weight_bytes": self.weight_bytes, "compulsory_bytes": self.compulsory_bytes,
                "roofline_cycles": self.roofline_cycles}

    def expected_into(self, storage):
        """Run :meth:`golden` on the inputs held in ``storage`` (region name -> flat int16
        contents) and write the result into the output's contents there; returns it."""
        values = [t.padded(storage[t.region.name]) for t in self.inputs]
        y = np.asarray(self.golden(*values), dtype=np.int16)
        name = self.out.region.name
        storage[name] = self.out.pack(y, into=storage[name], channel=self.channel)
        return y
