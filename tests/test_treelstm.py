"""Tree-LSTM on the RTL: bit-exact in every mode over random trees, one DyPipe program for
every tree of a size (the tree is data), the random trees' shape, and bad trees."""

import numpy as np
import pytest

from dypipe.config import PRESETS
from dypipe.sw.treelstm import compile_treelstm, random_tree, random_treelstm
from dypipe.sw.workload import MODES
from dypipe.tb.runner import run_workload

SMALL = PRESETS["small"]


@pytest.mark.parametrize("leaves", [2, 3, 19, 128])
def test_random_trees_are_binary_bottom_up_by_level(leaves):
    tree = random_tree(leaves, np.random.default_rng(leaves))
    assert len(tree) == leaves - 1
    children = [c for pair in tree for c in pair]
    assert sorted(children) == list(range(2 * leaves - 2))      # every node but the root once
    height = [0] * leaves
    for j, (l, r) in enumerate(tree, start=leaves):
        assert l < j and r < j
        height.append(max(height[l], height[r]) + 1)
    assert height[leaves:] == sorted(height[leaves:])


@pytest.mark.verilator
@pytest.mark.parametrize("leaves", [1, 2, 7, 19])
def test_treelstm_all_modes(leaves):
    cycles = {}
    for mode in MODES:
        wl = random_treelstm(SMALL, leaves, seed=leaves, mode=mode)
        r = run_workload(wl)
        assert r.verified, f"{mode}: {r.mismatches}"
        assert r.counters["tasks"] == 6 * (2 * leaves - 1) + 3     # + biases, two weight loads
        cycles[mode] = r.cycles
    if leaves > 2:
        assert cycles["dypipe"] < cycles["nonepipe"]


def test_one_dypipe_program_for_every_tree():
    """The tree is data: DyPipe's program is the same for two trees of a size, static's is
    compiled for each."""
    words = {mode: [random_treelstm(SMALL, 19, seed=s, mode=mode).program.words
                    for s in (1, 2)] for mode in ("dypipe", "static")}
    assert words["dypipe"][0] == words["dypipe"][1]
    assert words["static"][0] != words["static"][1]


def test_bad_trees():
    words = np.zeros((3, 4), np.int16)
    w = {"leaf": {g: (np.zeros((4, 4), np.int16), np.zeros(4, np.int16)) for g in "iou"},
         "node": {g: (np.zeros((4, 8), np.int16), np.zeros(4, np.int16))
                  for g in ("i", "fl", "fr", "o", "u")}}
    with pytest.raises(ValueError, match="has 2 inner nodes"):
        compile_treelstm(SMALL, [(0, 1)], words, w, hidden=4, embed=4)
    with pytest.raises(ValueError, match="listed before it"):
        compile_treelstm(SMALL, [(0, 4), (3, 2)], words, w, hidden=4, embed=4)
    with pytest.raises(ValueError, match="listed before it"):
        compile_treelstm(SMALL, [(0, 1), (0, 3)], words, w, hidden=4, embed=4)
