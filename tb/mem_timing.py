"""Random memory timing for the DRAM models: seeded back-pressure and extra read latency.

Both DRAM models (``rtl/verilog/dypipe_dram.v`` for Verilator, :func:`dypipe.tb.amaranth_sim.
dram_model` for Amaranth's simulator) follow the rule here, cycle for cycle, so the two
simulators still agree on every counter under random timing. A 32-bit xorshift generator
starts at the seed and steps once a cycle (from the first cycle out of reset). In a cycle
whose generator value is ``r``, the memory refuses requests when ``r & 0xFF`` is below
``stall_below`` (about ``stall_percent`` of the cycles), and a read accepted then gets
``(r >> 16) % (max_extra + 1)`` cycles on top of ``config.dram_latency``; responses stay in
order (a response is due at ``max(request + latency + extra, previous response + 1)``).
"""

import dataclasses
import os

__all__ = ["MemTiming", "xorshift32", "default_timing", "choose_timing", "MAX_EXTRA",
           "MAX_STALL_PERCENT", "TIMING_ENV"]

#: The largest extra latency: the harness sizes the Verilog model's queue by it (its
#: ``MAX_EXTRA`` parameter).
MAX_EXTRA = 255
#: The most cycles the memory may refuse (100% would never let a request through).
MAX_STALL_PERCENT = 90


def xorshift32(x):
    """One step of the generator (Marsaglia's 13, 17, 5 xorshift)."""
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x


@dataclasses.dataclass(frozen=True)
class MemTiming:
    """Random memory timing: ``seed`` (any non-negative integer below 2**32), the percentage
    of cycles the memory refuses requests, and the most extra cycles a read may take."""
    seed: int
    stall_percent: int = 25
    max_extra: int = 16

    def __post_init__(self):
        for name, value, hi in (("seed", self.seed, 2**32 - 1),
                                ("stall_percent", self.stall_percent, MAX_STALL_PERCENT),
                                ("max_extra", self.max_extra, MAX_EXTRA)):
            if not isinstance(value, int) or not 0 <= value <= hi:
                raise ValueError(f"random memory timing: {name} must be an integer in 0..{hi}, "
                                 f"not {value!r}")

    @property
    def start(self):
        """The generator's first value (xorshift never leaves 0, so seed 0 starts elsewhere)."""
        return self.seed or 0x2545F491

    @property
    def stall_below(self):
        return (self.stall_percent * 256 + 50) // 100

    def ready(self, r):
        """Whether the memory takes a request in a cycle whose generator value is ``r``."""
        return (r & 0xFF) >= self.stall_below

    def extra(self, r):
        """The extra latency of a read accepted in a cycle whose generator value is ``r``."""
        return (r >> 16) % (self.max_extra + 1)

    def plusargs(self):
        """The Verilog model's plusargs."""
        return [f"+DRAM_SEED={self.start}", f"+DRAM_STALL={self.stall_percent}",
                f"+DRAM_EXTRA={self.max_extra}"]

    def describe(self):
        return (f"random memory timing: seed {self.seed}, {self.stall_percent}% of cycles "
                f"refused, up to {self.max_extra} extra cycles a read")


#: Environment variable: run every workload under random memory timing from this seed, unless
#: the caller chooses (``DYPIPE_RANDOM_TIMING=7 make test``).
TIMING_ENV = "DYPIPE_RANDOM_TIMING"


def default_timing():
    """The random memory timing :data:`TIMING_ENV` asks for, or None."""
    value = os.environ.get(TIMING_ENV, "").strip()
    if not value:
        return None
    try:
        return MemTiming(int(value))
    except ValueError:
        raise ValueError(f"{TIMING_ENV} must be a seed (an integer in 0..{2**32 - 1}), "
                         f"not {value!r}") from None


def choose_timing(timing):
    """A run's timing: ``timing`` if given, None (the fixed latency) for ``False``, else
    :func:`default_timing`."""
    return default_timing() if timing is None else timing or None
