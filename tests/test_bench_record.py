"""What a benchmark records of a run (``dypipe.bench._record``), without a simulator."""

from types import SimpleNamespace

from dypipe import bench
from dypipe.config import PRESETS


def test_fractions_print_as_the_cycles_give_them():
    """ResNet-18's DyPipe run on ``paper`` at 5ec099e: 1,476,309 roofline cycles of 1,583,099
    is 93.2543%, a tenth of a percent 93.3%. Kept to 4 digits (0.9325) it printed 93.2%."""
    counters = {"dram_read_bytes": 10, "dram_write_bytes": 0, "datapath_idle": 0, "tasks": 1}
    run = SimpleNamespace(mode="dypipe", cycles=1_583_099, verified=True, counters=counters,
                          ctrl_cycles_per_task=1.0, wall_seconds=1.0,
                          sim_cycles_per_second=1.0, mismatches=[])
    workload = SimpleNamespace(meta={"roofline_cycles": 1_476_309, "compulsory_bytes": 10})
    rec = bench._record(PRESETS["paper"], workload, run)
    assert f"{rec['roofline_fraction']:.1%}" == "93.3%"
