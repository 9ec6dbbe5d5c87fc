"""The linker: control programs larger than the instruction memory run as overlay segments.

A program that fits the instruction memory is assembled as it is: the control program from pc
0, the module functions after it. One that does not fit is laid out as::

    pc 0                  j window
    1 .. window - 1       every module function (resident: tasks may run them at any time)
    window .. imem_words  the overlay window: one segment of the control program at a time

The control program is cut at its *boundaries* (:meth:`ProgramBuilder.boundary`: points no
branch crosses) into segments packed greedily into the window. Segment 0 is part of the boot
image; every later one is a DRAM region allocated after the tensors. A segment that is not
the last ends with a trampoline that loads the next one over itself::

    li32    r1, <DRAM word address of the next segment>
    li      r31, <its length in words>
    overlay r1, r31, <window>

and the next segment starts by reloading the values the builder knew the two scratch
registers to hold at that boundary (it leaves out ``li`` of a value a register is known to
hold). Every other register carries over.
"""

import bisect
import dataclasses
from typing import NamedTuple

import numpy as np

from .asm import AsmError, Program, assemble
from .image import Region

__all__ = ["Boundary", "Overlay", "link", "TRAMPOLINE_WORDS"]

#: Words of the trampoline that ends every segment but the last.
TRAMPOLINE_WORDS = 4


class Boundary(NamedTuple):
    """A point before line ``line`` (0-based, of the control program) where it may be split.
    ``restore`` are the lines that give the scratch registers back the values the code after
    the boundary may rely on."""
    line: int
    restore: tuple = ()


@dataclasses.dataclass(frozen=True)
class Overlay:
    """A segment loaded at run time: ``program`` (assembled at the window) lives in DRAM
    region ``region``."""
    region: Region
    program: Program


def link(control, functions, boundaries, config, *, scratch, image=None,
         filename="<program>"):
    """Assemble a control program (``control``: lines) and its module functions
    (``functions``: lines) for ``config``.

    When the whole fits ``config.imem_words``, the result is exactly ``assemble`` of the
    control lines followed by the function lines. Otherwise the control program is split at
    ``boundaries`` (:class:`Boundary`, in order) into overlay segments whose trampolines use the
    registers ``scratch`` (address, length); segments after the first are allocated in
    ``image`` (a :class:`~dypipe.sw.image.DramImage`), with their words as data.

    Raises :class:`AsmError` for assembly errors and, naming the line, when the program needs
    overlays but no ``image`` is given, when a piece between two boundaries does not fit the
    window, or when a label is used in another segment than the one it is in.
    """
    control, functions = list(control), list(functions)
    text = "\n".join(control + functions) + "\n"
    try:
        whole = assemble(text, filename)
    except AsmError:
        whole = None        # perhaps only SAVEPCs that cannot reach functions past 2**16
    if whole is not None and len(whole.words) <= config.imem_words:
        return whole
    resident = assemble("\n".join(functions) + "\n", filename, origin=1,
                        first_line=len(control) + 1)
    # The control program alone, to count its words (where the functions go changes the size
    # of no instruction). It raises any error of the control program itself.
    sized = assemble("\n".join(control) + "\n", filename,
                     externs={name: 0 for name in resident.labels})
    if len(sized.words) + len(resident.words) <= config.imem_words:
        assemble(text, filename)            # it fits, so its error was real: raise it
    return _Linker(control, resident, sized, boundaries, config, scratch, image,
                   filename).link()


class _Piece(NamedTuple):
    first: int          # control lines [first, end)
    end: int
    words: int
    restore: tuple      # lines that start the piece when it starts a segment
    restore_words: int


class _Linker:
    def __init__(self, control, resident, sized, boundaries, config, scratch, image,
                 filename):
        self.control, self.config, self.image, self.filename = control, config, image, filename
        self.functions, self.sized = resident, sized
        self.addr_reg, self.len_reg = scratch
        self.window = 1 + len(self.functions.words)
        self.room = config.imem_words - self.window
        self.pieces = self._pieces(boundaries)

    def fail(self, line, message):
        raise AsmError(self.filename, line, message)

    def _pc(self, line):
        """The pc of the first word from control line ``line`` (0-based) on."""
        return bisect.bisect_right(self.sized.lines, line)

    def _pieces(self, boundaries):
        cuts = {0: ()}
        for b in boundaries:
            if 0 < b.line < len(self.control):
                cuts[b.line] = tuple(b.restore)
        starts = sorted(cuts)
        pieces = []
        for first, end in zip(starts, starts[1:] + [len(self.control)]):
            restore = cuts[first]
            size = len(assemble("\n".join(restore) + "\n", self.filename).words)
            pieces.append(_Piece(first, end, self._pc(end) - self._pc(first), restore, size))
        return pieces

    def _where(self):
        return (f"the overlay window of {self.room} words (the {self.config.imem_words}-word "
                f"instruction memory of {self.config.name} less 1 jump and "
                f"{self.window - 1} words of module functions)")

    def _segments(self):
        """``[(first piece, end piece)]``: greedily as many pieces as fit the window."""
        if self.image is None:
            words = len(self.sized.words)
            total = words + len(self.functions.words)
            line = self.sized.lines[min(words, self.config.imem_words) - 1] if words else 1
            self.fail(line, f"the program needs {total} words, the "
                            f"{self.config.name} instruction memory holds "
                            f"{self.config.imem_words}: it must be split into overlays, which "
                            f"live in DRAM, so give the DramImage to assemble "
                            f"(pb.assemble(name, image=image))")
        segments, i, n = [], 0, len(self.pieces)
        while i < n:
            start, size = i, self.pieces[i].restore_words if i else 0
            while i < n:
                need = self.pieces[i].words + (TRAMPOLINE_WORDS if i < n - 1 else 0)
                if size + need > self.room:
                    break
                size += self.pieces[i].words
                i += 1
            if i == start:
                p = self.pieces[i]
                self.fail(p.first + 1, f"the control program from here to line {p.end} has no "
                                       f"boundary to split it at: its {p.words} words (and "
                                       f"{size + need - p.words} to enter and leave it) do not "
                                       f"fit {self._where()}; add boundaries (pb.boundary()) "
                                       f"or keep atomic regions (pb.atomic()) smaller")
            segments.append((start, i))
        return segments

    def _size(self, k, segments):
        first, end = segments[k]
        size = sum(p.words for p in self.pieces[first:end])
        size += self.pieces[first].restore_words if k else 0
        return size + (TRAMPOLINE_WORDS if k < len(segments) - 1 else 0)

    def link(self):
        if self.room <= TRAMPOLINE_WORDS:
            self.fail(len(self.control) + 1,
                      f"the module functions take {self.window - 1} words and leave no "
                      f"overlay window in the {self.config.imem_words}-word instruction memory")
        segments = self._segments()
        regions = [None] + [self.image.alloc(f"overlay.{k}", 2 * self._size(k, segments))
                            for k in range(1, len(segments))]
        programs = [self._segment(k, segments, regions) for k in range(len(segments))]
        for region, program in zip(regions[1:], programs[1:]):
            self.image.set(region.name, np.asarray(program.words, dtype="<u4").view("<i2"))
        jump = assemble(f"j {self.window}\n", self.filename)
        first = programs[0]
        return Program(words=jump.words + self.functions.words + first.words,
                       labels={**self.functions.labels, **first.labels},
                       lines=[1] + self.functions.lines + first.lines,
                       overlays=tuple(Overlay(r, p) for r, p in zip(regions[1:], programs[1:])))

    def _segment(self, k, segments, regions):
        """Segment ``k`` assembled at the window: restore, its pieces, the trampoline."""
        first, end = segments[k]
        start, stop = self.pieces[first].first, self.pieces[end - 1].end
        words, lines, labels = [], [], {}

        def add(text, line, externs=None):
            part = assemble(text, self.filename, origin=self.window + len(words),
                            first_line=line, externs=externs)
            words.extend(part.words)
            lines.extend(part.lines if externs is not None else [line] * len(part.words))
            labels.update(part.labels)

        if k:
            add("\n".join(self.pieces[first].restore) + "\n", start + 1)
        try:
            add("\n".join(self.control[start:stop]) + "\n", start + 1, self.functions.labels)
        except AsmError as e:
            if e.undefined not in self.sized.labels:
                raise
            total = len(self.sized.words) + len(self.functions.words)
            self.fail(e.line, f"label '{e.undefined}' is in another overlay segment: the "
                              f"program ({total} words) is split at its "
                              f"boundaries to fit {self._where()}, and no branch may cross a "
                              f"boundary (keep the branch and its target in one pb.atomic())")
        if k < len(segments) - 1:
            nxt = regions[k + 1]
            add(f"li32 {self.addr_reg}, {nxt.beat * self.config.beat_words}\n"
                f"li {self.len_reg}, {self._size(k + 1, segments)}\n"
                f"overlay {self.addr_reg}, {self.len_reg}, {self.window}\n", stop)
        assert len(words) == self._size(k, segments), (k, len(words))
        return Program(words, labels, lines, self.window)
