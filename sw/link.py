"""The linker: the module functions first, and control programs larger than the instruction
memory as overlay segments.

The module sequencers fetch only from the first ``config.func_words`` instructions (each has
its own copy of them), so the module functions come first. A program that fits the
instruction memory is laid out as::

    pc 0                      j main
    1 .. main - 1             every module function
    main ..                   the control program

One that does not fit is laid out as::

    pc 0                      j window0
    1 .. window0 - 1          every module function (resident: tasks may run them at any time)
    window0 .. window1 - 1    overlay window 0 } half each of what the functions leave; one
    window1 .. imem_words     overlay window 1 } segment of the control program in each

The control program is cut at its *boundaries* (:meth:`ProgramBuilder.boundary`: points no
branch crosses) into segments packed greedily into a window. Segment ``k`` runs in window
``k % 2``. Segments 0 and 1 are part of the boot image, which fills the instruction memory as
it did with one window; every later one is a DRAM region allocated after the tensors. Every
segment but the last ends with the trampoline ``enter <the other window>``: wait until the
copy into it has landed, if one is under way, and jump. While segment ``k >= 1`` runs, the
copy engine brings segment ``k + 1`` into the other window in the background: every such
segment but the last starts with::

    li32     r1, <DRAM word address of segment k + 1>
    li       r31, <its length in words>
    prefetch r1, r31, <the other window>

and then reloads the values the builder knew the two scratch registers to hold at its first
boundary (it leaves out ``li`` of a value a register is known to hold). Every other register
carries over; where no prefetch comes between them, so do the scratch registers.
"""

import bisect
import dataclasses
from typing import NamedTuple

import numpy as np

from .asm import AsmError, Program, assemble
from .image import Region

__all__ = ["Boundary", "Overlay", "link", "BOOT_SEGMENTS", "PREFETCH_WORDS",
           "TRAMPOLINE_WORDS"]

#: Segments the boot loads, one into each window.
BOOT_SEGMENTS = 2
#: Words of the prefetch of the next segment that starts every segment from 1 on but the last.
PREFETCH_WORDS = 4
#: Words of the trampoline (``enter``) that ends every segment but the last.
TRAMPOLINE_WORDS = 1


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

    The jump at pc 0, the module functions from pc 1 (all of them within
    ``config.func_words``), then the control program: when the whole fits
    ``config.imem_words``, from right after the functions. Otherwise the control program is
    split at ``boundaries`` (:class:`Boundary`, in order) into overlay segments whose
    prefetches use the registers ``scratch`` (address, length); segments after the second are
    allocated in ``image`` (a :class:`~dypipe.sw.image.DramImage`), with their words as data.

    Raises :class:`AsmError` for assembly errors and, naming the line, when the module
    functions do not fit ``func_words``, when the program needs overlays but no ``image`` is
    given, when a piece between two boundaries does not fit a window, or when a label is used
    in another segment than the one it is in.
    """
    control, functions = list(control), list(functions)
    resident = assemble("\n".join(functions) + "\n", filename, origin=1,
                        first_line=len(control) + 1)
    main = 1 + len(resident.words)
    if main > config.func_words:
        line = resident.lines[config.func_words - 1] if resident.words else len(control) + 1
        raise AsmError(filename, line,
                       f"the module functions take {len(resident.words)} words; the module "
                       f"sequencers of {config.name} fetch from the first {config.func_words} "
                       f"(func_words), one of which is the jump at pc 0")
    # Where the functions are does not change the size of any instruction: the control
    # program may be assembled at its place at once.
    whole = assemble("\n".join(control) + "\n", filename, origin=main,
                     externs=resident.labels)
    for label in sorted(set(whole.labels) & set(resident.labels)):
        at = min(whole.labels[label] - main, len(whole.lines) - 1)
        raise AsmError(filename, whole.lines[at] if at >= 0 else 1,
                       f"duplicate label '{label}' (a module function defines it too)")
    if main + len(whole.words) <= config.imem_words:
        return Program(words=_jump(main, filename) + resident.words + whole.words,
                       labels={**resident.labels, **whole.labels},
                       lines=[1] + resident.lines + whole.lines)
    return _Linker(control, resident, whole, boundaries, config, scratch, image,
                   filename).link()


def _jump(target, filename):
    """The word at pc 0: the jump over the module functions."""
    return assemble(f"j {target}\n", filename).words


class _Piece(NamedTuple):
    first: int          # control lines [first, end)
    end: int
    words: int
    restore: tuple      # lines that reload the scratch registers when it starts a segment
    restore_words: int


class _Linker:
    def __init__(self, control, resident, sized, boundaries, config, scratch, image,
                 filename):
        self.control, self.config, self.image, self.filename = control, config, image, filename
        self.functions, self.sized = resident, sized
        self.addr_reg, self.len_reg = scratch
        first = 1 + len(self.functions.words)
        self.room = (config.imem_words - first) // 2            # words in a window
        self.windows = (first, first + self.room)
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
        return (f"an overlay window of {self.room} words (the {self.config.imem_words}-word "
                f"instruction memory of {self.config.name} less 1 jump and "
                f"{self.windows[0] - 1} words of module functions holds two)")

    def _overhead(self, first, last):
        """Words a segment whose first piece is ``first`` adds to its pieces: the prefetch and
        the restore after it (not in segment 0: segment 1 is booted), and the trampoline;
        nothing if it is the ``last``."""
        if last:
            return 0
        if first == 0:
            return TRAMPOLINE_WORDS
        return PREFETCH_WORDS + self.pieces[first].restore_words + TRAMPOLINE_WORDS

    def _segments(self):
        """``[(first piece, end piece)]``: greedily as many pieces as fit a window."""
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
            start, words = i, 0
            while i < n:
                overhead = self._overhead(start, i == n - 1)
                if words + self.pieces[i].words + overhead > self.room:
                    break
                words += self.pieces[i].words
                i += 1
            if i == start:
                p = self.pieces[i]
                more = f" (and {overhead} to enter and leave it)" if overhead else ""
                self.fail(p.first + 1, f"the control program from here to line {p.end} has no "
                                       f"boundary to split it at: its {p.words} words{more} do "
                                       f"not fit {self._where()}; add boundaries "
                                       f"(pb.boundary()) or keep atomic regions (pb.atomic()) "
                                       f"smaller")
            segments.append((start, i))
        return segments

    def _size(self, k, segments):
        first, end = segments[k]
        words = sum(p.words for p in self.pieces[first:end])
        return words + self._overhead(first, k == len(segments) - 1)

    def link(self):
        if self.room <= PREFETCH_WORDS + TRAMPOLINE_WORDS:
            self.fail(len(self.control) + 1,
                      f"the module functions take {self.windows[0] - 1} words and leave no "
                      f"room for two overlay windows in the {self.config.imem_words}-word "
                      f"instruction memory")
        segments = self._segments()
        regions = [None] * BOOT_SEGMENTS
        regions += [self.image.alloc(f"overlay.{k}", 2 * self._size(k, segments))
                    for k in range(BOOT_SEGMENTS, len(segments))]
        programs = [self._segment(k, segments, regions) for k in range(len(segments))]
        loaded = list(zip(regions, programs))[BOOT_SEGMENTS:]
        for region, program in loaded:
            self.image.set(region.name, np.asarray(program.words, dtype="<u4").view("<i2"))
        # The boot image: the jump, the functions, segment 0 and, from window 1 on, segment 1.
        words = _jump(self.windows[0], self.filename) + self.functions.words
        labels, lines = dict(self.functions.labels), [1] + self.functions.lines
        for window, program in zip(self.windows, programs[:BOOT_SEGMENTS]):
            pad = window - len(words)       # zeros: ILLEGAL, never run
            words += [0] * pad + program.words
            lines += lines[-1:] * pad + program.lines
            labels.update(program.labels)
        return Program(words=words, labels=labels, lines=lines,
                       overlays=tuple(Overlay(r, p) for r, p in loaded), windows=self.windows)

    def _segment(self, k, segments, regions):
        """Segment ``k`` assembled at window ``k % 2``: the prefetch of segment ``k + 1`` into
        the other window and the restore (not in segment 0), its pieces, the trampoline."""
        first, end = segments[k]
        start, stop = self.pieces[first].first, self.pieces[end - 1].end
        last = k == len(segments) - 1
        here, other = self.windows[k % 2], self.windows[(k + 1) % 2]
        words, lines, labels = [], [], {}

        def add(text, line, externs=None):
            part = assemble(text, self.filename, origin=here + len(words),
                            first_line=line, externs=externs)
            words.extend(part.words)
            lines.extend(part.lines if externs is not None else [line] * len(part.words))
            labels.update(part.labels)

        if k and not last:
            add(f"li32 {self.addr_reg}, {regions[k + 1].beat * self.config.beat_words}\n"
                f"li {self.len_reg}, {self._size(k + 1, segments)}\n"
                f"prefetch {self.addr_reg}, {self.len_reg}, {other}\n", start + 1)
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
        if not last:
            add(f"enter {other}\n", stop)
        assert len(words) == self._size(k, segments), (k, len(words))
        return Program(words, labels, lines, here)
