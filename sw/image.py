"""The DRAM image of a run: where each tensor lives, in beats, and its contents.

Beat 0 onward holds the program as the boot loads it (``config.imem_words`` words are
reserved); tensors follow, each starting on a beat boundary. A program too large for the
instruction memory adds its overlay segments as regions after the tensors (:mod:`.link`).
Elements are int16, element 0 of a beat in its low bits.
"""

import dataclasses

import numpy as np

__all__ = ["Region", "DramImage"]


@dataclasses.dataclass(frozen=True)
class Region:
    name: str
    beat: int        # first beat
    beats: int       # length in beats
    elems: int       # meaningful elements (the rest of the last beat is padding)


class DramImage:
    """Allocates tensors in DRAM and holds their initial contents."""

    def __init__(self, config):
        self.config = config
        self.regions = {}
        self._data = {}
        program_bytes = config.imem_words * 4
        self._next = -(-program_bytes // config.dram_bytes_per_cycle)
        self.program_beats = self._next

    def alloc(self, name, elems, data=None):
        """Reserve ``elems`` int16 elements; optionally set their contents. Returns the
        :class:`Region`. Raises :class:`ValueError` when the DRAM is full or the name taken."""
        if name in self.regions:
            raise ValueError(f"DRAM region {name!r} allocated twice")
        per_beat = self.config.beat_elems
        beats = -(-elems // per_beat)
        if self._next + beats > self.config.dram_beats:
            raise ValueError(
                f"DRAM image needs {(self._next + beats) * self.config.dram_bytes_per_cycle} "
                f"bytes for {name!r}, the {self.config.name} configuration has "
                f"{self.config.dram_bytes}")
        region = Region(name, self._next, beats, elems)
        self.regions[name] = region
        self._next += beats
        if data is not None:
            self.set(name, data)
        return region

    def set(self, name, data):
        region = self.regions[name]
        flat = np.asarray(data).astype(np.int16).ravel()
        if flat.size != region.elems:
            raise ValueError(f"{name!r} holds {region.elems} elements, got {flat.size}")
        self._data[name] = flat

    def data(self, name):
        """A copy of region ``name``'s initial contents (zeros if none were set)."""
        region = self.regions[name]
        if name in self._data:
            return self._data[name].copy()
        return np.zeros(region.elems, dtype=np.int16)

    @property
    def used_beats(self):
        return self._next

    def beats(self, program_words):
        """The whole image as a (beats, beat_elems) uint16 array, program at beat 0."""
        per_beat = self.config.beat_elems
        out = np.zeros((self._next, per_beat), dtype=np.uint16)
        words = np.asarray(program_words, dtype=np.uint32)
        if words.size > self.config.imem_words:
            raise ValueError(f"program has {words.size} instructions, the instruction memory "
                             f"holds {self.config.imem_words} (ProgramBuilder.assemble with "
                             f"the image links a larger one into overlays)")
        flat = out.reshape(-1)
        flat[:2 * words.size] = words.view(np.uint16)
        for name, data in self._data.items():
            region = self.regions[name]
            start = region.beat * per_beat
            flat[start:start + data.size] = data.view(np.uint16)
        return out

    def extract(self, name, beats):
        """Region ``name`` out of dumped ``beats`` (a (n, beat_elems) array starting at the
        region's first beat) as int16."""
        region = self.regions[name]
        return np.asarray(beats).reshape(-1)[:region.elems].astype(np.uint16).view(np.int16)
