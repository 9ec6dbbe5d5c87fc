"""Feature maps in DRAM: height x width x channels (channels innermost), with a halo.

A :class:`Tensor` is stored with ``pad`` rows and columns of ``pad_value`` around it, so a
convolution or pooling reads its padding like any other data ("padding by layout"), and with
``cpitch`` elements per pixel, the channels rounded up to whole DRAM beats (the extra lanes are
never compared). A layer may write a channel slice of a larger tensor: that is concat.
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
    pad: int
    cpitch: int
    beat_elems: int

    @property
    def hp(self):
        """Height with the halo."""
        return self.h + 2 * self.pad

    @property
    def wp(self):
        return self.w + 2 * self.pad

    @property
    def pixel_beats(self):
        return self.cpitch // self.beat_elems

    def beat(self, y, x, channel=0):
        """DRAM beat of pixel (y, x) in halo coordinates, at ``channel`` (a beat boundary)."""
        return (self.region.beat + (y * self.wp + x) * self.pixel_beats
                + channel // self.beat_elems)

    def beats(self, rows):
        """Beats of ``rows`` whole rows (with the halo columns)."""
        return rows * self.wp * self.pixel_beats

    def interior(self, flat):
        """The (h, w, c) values out of the region's flat contents."""
        full = np.asarray(flat).reshape(self.hp, self.wp, self.cpitch)
        return full[self.pad:self.pad + self.h, self.pad:self.pad + self.w, :self.c]

    def pack(self, values, pad_value=0, into=None):
        """The region's flat contents with ``values`` (h, w, c) inside (``into``: contents to
        start from, else ``pad_value`` everywhere)."""
        full = (np.full((self.hp, self.wp, self.cpitch), pad_value, dtype=np.int16)
                if into is None else np.asarray(into, np.int16).reshape(
                    self.hp, self.wp, self.cpitch).copy())
        full[self.pad:self.pad + self.h, self.pad:self.pad + self.w, :self.c] = values
        return full.reshape(-1)

    def mask(self, channels=None):
        """Flat bool mask of the interior's real channels (``channels``: a slice of them)."""
        m = np.zeros((self.hp, self.wp, self.cpitch), dtype=bool)
        m[self.pad:self.pad + self.h, self.pad:self.pad + self.w,
          channels if channels is not None else slice(0, self.c)] = True
        return m.reshape(-1)


def alloc_tensor(image, name, h, w, c, *, pad=0, pad_value=0, data=None):
    """Allocate a tensor in ``image``; ``data`` (h, w, c) fills its interior, ``pad_value``
    its halo and unused lanes."""
    per_beat = image.config.beat_elems
    cpitch = -(-c // per_beat) * per_beat
    elems = (h + 2 * pad) * (w + 2 * pad) * cpitch
    region = image.alloc(name, elems)
    t = Tensor(region, h, w, c, pad, cpitch, per_beat)
    contents = t.pack(np.zeros((h, w, c), np.int16) if data is None else data, pad_value)
    image.set(name, contents)
    return t
