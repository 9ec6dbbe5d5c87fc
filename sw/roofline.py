"""The roofline: the physical lower bound on a workload's cycles (DESIGN.md section 3)."""

__all__ = ["roofline"]


def roofline(config, macs, compulsory_bytes):
    """max(MACs / (R*C), compulsory DRAM bytes / bytes per cycle), where compulsory bytes move
    every input, weight and output the work needs exactly once."""
    return max(-(-macs // config.macs_per_cycle),
               -(-compulsory_bytes // config.dram_bytes_per_cycle))
