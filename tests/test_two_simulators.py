"""The same workloads in Amaranth's simulator (Amaranth memories, the Python DRAM model) and in
Verilator (the Verilog SRAM banks and DRAM model): outputs and every counter must agree."""

import pytest

from dypipe.config import PRESETS
from dypipe.sw.fc import random_fc
from dypipe.sw.seqloop import random_seqloop
from dypipe.sw.workload import MODES
from dypipe.tb.amaranth_sim import simulate
from dypipe.tb.runner import run_workload

pytestmark = pytest.mark.verilator
CFG = PRESETS["small"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("make", [
    lambda mode: random_fc(CFG, 30, 20, seed=2, mode=mode),
    lambda mode: random_seqloop(CFG, sequences=3, max_length=4, slots=2, seed=4, mode=mode),
], ids=["fc", "seqloop"])
def test_simulators_agree(make, mode):
    workload = make(mode)
    fast = run_workload(workload)
    slow = simulate(workload)
    assert slow["status"] == "done"
    assert fast.verified and not workload.check(slow["outputs"])
    assert slow["counters"] == fast.counters
