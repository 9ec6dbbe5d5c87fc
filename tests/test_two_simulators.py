"""The same workloads in Amaranth's simulator (Amaranth memories, the Python DRAM model) and in
Verilator (the Verilog SRAM banks and DRAM model): outputs and every counter must agree."""

import pytest

from dypipe.config import PRESETS
from dypipe.sw.fc import random_fc
from dypipe.sw.seqloop import random_seqloop
from dypipe.sw.workload import MODES
from dypipe.tb.amaranth_sim import simulate
from dypipe.sw.isa import Act
from dypipe.sw.ops import conv_workload, eltwise_workload, pool_workload
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


@pytest.mark.parametrize("make", [
    lambda: conv_workload(CFG, h=4, w=5, cin=6, cout=5, kernel=3, stride=1, pad=1,
                          act=Act.TANH, seed=1),
    lambda: pool_workload(CFG, h=5, w=5, c=6, kernel=2, stride=1, kind="avg",
                          act=Act.SIGMOID, seed=2),
    lambda: eltwise_workload(CFG, n=40, op="mul", act=Act.RELU, seed=3),
], ids=["conv-tanh", "avgpool-sigmoid", "mul-relu"])
def test_simulators_agree_on_operators(make):
    """The PFU's Verilog primitives (MAC array, lanes) and their Amaranth twins."""
    test_simulators_agree(lambda mode: make(), "dypipe")
