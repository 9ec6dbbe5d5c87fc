"""Shared helpers for the system tests."""

from dypipe.config import PRESETS
from dypipe.sw.asm import assemble
from dypipe.sw.image import DramImage
from dypipe.sw.workload import Workload


def asm_workload(text, config=PRESETS["small"], expected=None, image=None):
    """A workload from hand-written assembly (no outputs to check unless given)."""
    return Workload(name="asm", mode="dypipe", config=config,
                    program=assemble(text, "<test>"), image=image or DramImage(config),
                    expected=expected or {})
