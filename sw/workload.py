"""A compiled workload: the program, its DRAM image, and what the outputs must be."""

import dataclasses

import numpy as np

__all__ = ["Workload", "CompileError", "MODES"]

#: Execution modes (DESIGN.md section 2), one RTL for all.
MODES = ("nonepipe", "static", "dypipe")


class CompileError(ValueError):
    """A layer cannot be compiled for a configuration; the message says what was needed and
    what there is."""


@dataclasses.dataclass
class Workload:
    """Everything a run needs.

    Members
    -------
    name, mode : str
    config : Config
    program : dypipe.sw.asm.Program
    image : dypipe.sw.image.DramImage
    expected : dict of region name -> int16 array the region must hold after the run
    compare : dict of region name -> bool mask; only the masked elements are checked (static
        programs compute padding whose values do not matter)
    meta : dict of JSON-serializable facts (shapes, MACs, lengths ...)
    tensors : dict of tensor name -> :class:`~.tensor.Tensor` where it is stored (networks)
    """
    name: str
    mode: str
    config: object
    program: object
    image: object
    expected: dict
    compare: dict = dataclasses.field(default_factory=dict)
    meta: dict = dataclasses.field(default_factory=dict)
    tensors: dict = dataclasses.field(default_factory=dict)

    def check(self, outputs):
        """Compare ``outputs`` (region name -> int16 array) with :attr:`expected`. Returns a
        list of human-readable mismatch lines (empty when everything matched), naming the first
        differing elements."""
        problems = []
        for name, exp in self.expected.items():
            got = np.asarray(outputs[name]).astype(np.int16).reshape(-1)
            exp = np.asarray(exp).astype(np.int16).reshape(-1)
            if got.shape != exp.shape:
                problems.append(f"{name}: {got.size} elements, expected {exp.size}")
                continue
            differ = got != exp
            if name in self.compare:
                differ &= np.asarray(self.compare[name], dtype=bool).reshape(-1)
            bad = np.flatnonzero(differ)
            if bad.size:
                shown = ", ".join(f"{name}[{i}] = {got[i]}, expected {exp[i]}" for i in bad[:5])
                problems.append(f"{name}: {bad.size} of {exp.size} elements differ: {shown}")
        return problems
