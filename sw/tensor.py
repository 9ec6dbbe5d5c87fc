"""Feature maps in DRAM: height x width x channels (channels innermost), with a halo.

A :class:`Tensor` is stored with ``halo`` rows and columns of ``pad_value`` around its ``h x w``
interior, so a convolution or pooling reads its padding like any other data ("padding by
layout"), and with ``cpitch`` elements per pixel, the channels rounded up to whole DRAM beats
(the extra lanes are never compared). A layer may write a channel slice of a larger tensor:
that is concat.

A reader sees the tensor through a *view* (:meth:`Tensor.view`) with its own padding ``(top,
left, bottom, right)``, each at most the halo: a 1x1 convolution and a 3x3 pool with padding 1
read the same stored tensor. :attr:`hp`, :attr:`wp` and :meth:`beat` are in view coordinates
(padding included); rows of the view are :attr:`row_pitch_beats` apart in DRAM.
"""

import dataclasses

import numpy as np

from .image import Region

__all__ = ["Tensor", "alloc_tensor", "out_size"]


def out_size(n, kernel, stride):
    """Outputs along a dimension of ``n`` inputs (padding included) for a window of
    ``kernel`` moving by ``stride``."""
    return (n - kernel) // stride + 1


@dataclasses.dataclass(frozen=True)
class Tensor:
    region: Region
    h: int
    w: int
    c: int
    halo: int
    cpitch: int
    beat_elems: int
    pads: tuple = (0, 0, 0, 0)      # the view's padding: top, left, bottom, right

    def __post_init__(self):
        if any(p < 0 or p > self.halo for p in self.pads):
            raise ValueError(f"{self.region.name}: padding {self.pads} exceeds the stored halo "
                             f"{self.halo}")

    def view(self, pads=(0, 0, 0, 0)):
        """The same stored tensor seen with padding ``pads`` (top, left, bottom, right)."""
        return dataclasses.replace(self, pads=tuple(int(p) for p in pads))

    @property
    def hp(self):
        """Height of the view, padding included."""
        return self.h + self.pads[0] + self.pads[2]

    @property
    def wp(self):
        return self.w + self.pads[1] + self.pads[3]

    @property
    def pad(self):
        """The view's padding as one number when it is the same on every side."""
        if len(set(self.pads)) != 1:
            raise ValueError(f"{self.region.name}: padding {self.pads} is not symmetric")
        return self.pads[0]

    @property
    def stored_w(self):
        """Pixels in one stored row (interior plus halo)."""
        return self.w + 2 * self.halo

    @property
    def stored_h(self):
        return self.h + 2 * self.halo

    @property
    def pixel_beats(self):
        return self.cpitch // self.beat_elems

    @property
    def row_pitch_beats(self):
        """DRAM beats from one stored row to the next."""
        return self.stored_w * self.pixel_beats

    def beat(self, y, x, channel=0):
        """DRAM beat of pixel (y, x) of the view (padding included), at ``channel`` (a beat
        boundary)."""
        sy, sx = y + self.halo - self.pads[0], x + self.halo - self.pads[1]
        return (self.region.beat + sy * self.row_pitch_beats + sx * self.pixel_beats
                + channel // self.beat_elems)

    def beats(self, rows):
        """DRAM beats from the start of a view row to the end of the ``rows``-th row, the
        view's width each."""
        return (rows - 1) * self.row_pitch_beats + self.wp * self.pixel_beats

    @property
    def contiguous_rows(self):
        """Whether consecutive view rows follow each other in DRAM without a gap."""
        return self.wp == self.stored_w

    def interior(self, flat):
        """The (h, w, c) values out of the region's flat contents."""
        full = np.asarray(flat).reshape(self.stored_h, self.stored_w, self.cpitch)
        return full[self.halo:self.halo + self.h, self.halo:self.halo + self.w, :self.c]

    def padded(self, flat):
        """The view's (hp, wp, c) values (padding included) out of the region's contents."""
        full = np.asarray(flat).reshape(self.stored_h, self.stored_w, self.cpitch)
        y0, x0 = self.halo - self.pads[0], self.halo - self.pads[1]
        return full[y0:y0 + self.hp, x0:x0 + self.wp, :self.c]

    def pack(self, values, pad_value=0, into=None, channel=0):
        """The region's flat contents with ``values`` (h, w, channels) written into the interior
        from ``channel`` on (``into``: contents to start from, else ``pad_value`` everywhere)."""
        full = (np.full((self.stored_h, self.stored_w, self.cpitch), pad_value, dtype=np.int16)
                if into is None else np.asarray(into, np.int16).reshape(
                    self.stored_h, self.stored_w, self.cpitch).copy())
        values = np.asarray(values)
        full[self.halo:self.halo + self.h, self.halo:self.halo + self.w,
             channel:channel + values.shape[2]] = values
        return full.reshape(-1)

    def mask(self, channels=None):
        """Flat bool mask of the interior's real channels (``channels``: a slice of them)."""
        m = np.zeros((self.stored_h, self.stored_w, self.cpitch), dtype=bool)
        m[self.halo:self.halo + self.h, self.halo:self.halo + self.w,
          channels if channels is not None else slice(0, self.c)] = True
        return m.reshape(-1)


def alloc_tensor(image, name, h, w, c, *, pad=0, pad_value=0, data=None, min_cpitch=0):
    """Allocate a tensor with a halo of ``pad`` in ``image``, seen with padding ``pad`` on
    every side; ``data`` (h, w, c) fills its interior, ``pad_value`` its halo and unused lanes.
    ``min_cpitch`` reserves at least that many elements a pixel."""
    per_beat = image.config.beat_elems
    cpitch = -(-max(c, min_cpitch) // per_beat) * per_beat
    elems = (h + 2 * pad) * (w + 2 * pad) * cpitch
    region = image.alloc(name, elems)
    t = Tensor(region, h, w, c, pad, cpitch, per_beat, (pad,) * 4)
    contents = t.pack(np.zeros((h, w, c), np.int16) if data is None else data, pad_value)
    image.set(name, contents)
    return t
