"""The equivalence check of the Verilog twins (``dypipe equiv``): it finds every parameter set
the presets instantiate, proves a real twin, and reports an altered one as not equivalent.

The tests that run SymbiYosys are marked ``formal``: they install the tools on first use and
are not part of ``make test``; ``make formal`` runs them."""

import dataclasses

import pytest

from dypipe import equiv
from dypipe.cli import main
from dypipe.config import PRESETS
from dypipe.rtl.lanes import LaneFinish, LaneFold
from dypipe.rtl.pfu import MacArray
from dypipe.rtl.sram import SRAM


def _quiet(message="", end="\n"):
    pass


def _twin(cls, preset="small", **params):
    for twin in equiv.twins([preset]):
        if twin.cls is cls and params.items() <= dict(twin.params).items():
            return twin
    raise AssertionError(f"no {cls.__name__} {params} in {preset}")


@pytest.mark.formal
def test_altered_rounding_is_not_equivalent():
    """The MAC array's write-back rounding constant off by a factor of two: FAIL, with a
    trace from the zero state (step 1: the first result)."""
    r = equiv.prove(_twin(LaneFinish, vector=False), mutant="rounding")
    assert (r.status, r.step) == ("FAIL", 1), r


@pytest.mark.formal
def test_row_port_winning_a_shared_lane_is_not_equivalent():
    """The twin's row write after its lane write: both write ports on one lane of one row
    keep the row port's data, the Amaranth bank the lane port's. FAIL at the first read."""
    r = equiv.prove(_twin(SRAM, width=64), mutant="collision")
    assert (r.status, r.step) == ("FAIL", 1), r


@pytest.mark.formal
def test_altered_mac_product_is_not_equivalent():
    """Each row's last product negated: FAIL at the first result, two edges after the
    first inputs (the products have their own registers)."""
    r = equiv.prove(_twin(MacArray), mutant="mac-sign")
    assert (r.status, r.step) == ("FAIL", 2), r


@pytest.mark.formal
def test_real_twins_are_equivalent():
    for twin in (_twin(LaneFinish, vector=False), _twin(SRAM, width=64), _twin(MacArray)):
        r = equiv.prove(twin)
        assert r.status == "PASS", r


def test_lane_finish_is_proven_lane_by_lane(tmp_path):
    """One SymbiYosys file per lane, each comparing only its lane's 16 output bits."""
    tasks, covered = equiv._write(tmp_path, _twin(LaneFinish, vector=False), 4, None, 60)
    assert tasks == ["lane0", "lane1", "lane2", "lane3"], tasks
    assert covered == "all 4 lanes, one task each"
    text = (tmp_path / "lane2.sby").read_text()
    assert text.count("connect -set out_lane2 out[47:32]") == 2     # gold and gate


def test_every_preset_use_is_found():
    twins = equiv.twins(["small"])
    uses = sorted(use for t in twins for use in t.uses)
    assert uses == [f"small: {path}" for path in sorted([
        "gbuf.nbin0", "gbuf.nbin1", "gbuf.sb", "gbuf.nbout", "pfu.conv.array",
        "pfu.conv.finish", "pfu.vec.fold", "pfu.vec.finish"])]
    assert dict(_twin(MacArray).params) == {"rows": 4, "cols": 8}
    assert dict(_twin(LaneFold).params) == {"lanes": 8}
    # The two NBin halves share one parameter set.
    assert len([t for t in twins if t.cls is SRAM]) == 3


def test_a_new_preset_is_covered(monkeypatch):
    wide = dataclasses.replace(PRESETS["small"], name="wide", pe_cols=16)
    monkeypatch.setitem(PRESETS, "wide", wide)
    assert dict(_twin(MacArray, "wide").params) == {"rows": 4, "cols": 16}


def test_mutants_still_apply():
    for cls, name, text, _ in equiv.MUTANTS.values():
        assert text in (equiv.VERILOG / name).read_text(), f"{text!r} not in {name}"
        assert equiv.TWINS[cls] == name


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="max_rows must be at least 1, not 0"):
        equiv.check(["small"], max_rows=0, log=_quiet)
    with pytest.raises(ValueError, match="unknown mutant 'typo'"):
        equiv.check(["small"], mutant="typo", log=_quiet)
    with pytest.raises(ValueError, match="unknown twins Adder; there are: LaneFinish"):
        equiv.check(["small"], only=["Adder"], log=_quiet)


def test_cli_names_unknown_preset(capsys):
    assert main(["equiv", "--presets", "huge"]) == 2
    assert "unknown configuration 'huge'" in capsys.readouterr().err
