"""Checking outputs: a mismatch names the first differing elements; masks hide padding."""

import numpy as np

from dypipe.config import PRESETS
from dypipe.sw.fc import random_fc
from dypipe.sw.image import DramImage
from dypipe.sw.workload import Workload

CFG = PRESETS["small"]


def workload(expected, compare=None):
    return Workload(name="t", mode="dypipe", config=CFG, program=None, image=DramImage(CFG),
                    expected=expected, compare=compare or {})


def test_match_reports_nothing():
    assert workload({"y": np.arange(8)}).check({"y": np.arange(8)}) == []


def test_mismatch_names_first_elements():
    got = np.arange(20)
    got[[3, 4, 17]] = [-1, 99, 5]
    (line,) = workload({"y": np.arange(20)}).check({"y": got})
    assert line.startswith("y: 3 of 20 elements differ")
    assert "y[3] = -1, expected 3" in line and "y[17] = 5, expected 17" in line


def test_mask_hides_padding():
    exp, got = np.zeros(6), np.array([0, 0, 7, 0, 0, 9])
    mask = np.array([1, 1, 0, 1, 1, 1], dtype=bool)
    (line,) = workload({"y": exp}, {"y": mask}).check({"y": got})
    assert "1 of 6" in line and "y[5] = 9" in line


def test_fc_expected_output_is_the_golden_model():
    w = random_fc(CFG, 5, 7, seed=1)
    (name,) = w.expected
    assert name == "fc.y" and w.expected[name][:5].any()
    assert not w.expected[name][5:].any()       # padding of the last row block stays zero
