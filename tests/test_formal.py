"""The formal check of the dispatcher (``dypipe formal``): it passes on the real dispatcher and
fails, at the step where the hazard first shows, on one whose overlap test is off by one.

The tests that run SymbiYosys are marked ``formal``: they install the tools on first use and
are not part of ``make test``; ``make formal`` runs them."""

import pytest

from dypipe import formal
from dypipe.cli import main
from dypipe.config import PRESETS

REDUCED = formal.reduced(PRESETS["small"])


def _quiet(message, end="\n"):
    pass


@pytest.mark.formal
def test_off_by_one_overlap_fails_hazard_at_step_3():
    """Commit a writer (step 0) and a reader of its last beat (step 1): the broken dispatcher
    offers the reader at step 2 and lets it act (go) at step 3, while the writer is live."""
    [r] = formal.check(REDUCED, ["hazard"], depth=4, mutant="off-by-one", log=_quiet)
    assert (r.status, r.step) == ("FAIL", 3), r


@pytest.mark.formal
def test_real_dispatcher_passes_shallow():
    names = ["invariants", "hazard", "slots", "ring", "idle", "cover"]
    results = formal.check(REDUCED, names, depth=3, log=_quiet)
    assert [(r.property, r.mode, r.status) for r in results] == [
        *((name, "bmc", "PASS") for name in names[:-1]), ("cover", "cover", "PASS")], \
        formal.summary(results)


def test_reduced_configuration():
    assert (REDUCED.task_ring, REDUCED.cb_slots, REDUCED.dram_beats) == (4, 4, 16)


@pytest.mark.parametrize("kwargs,message", [
    ({"depth": 0}, "depth must be at least 1, not 0"),
    ({"jobs": 0}, "jobs must be at least 1, not 0"),
    ({"properties": ["hazard", "speed"]}, "unknown properties 'speed'"),
    ({"mutant": "typo"}, "unknown mutant 'typo'"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        formal.check(REDUCED, **kwargs)


@pytest.mark.parametrize("argv,message", [
    (["--depth", "0"], "--depth: must be a positive number of cycles, not '0'"),
    (["--jobs", "x"], "--jobs: must be a positive number of jobs, not 'x'"),
    (["--mutant", "typo"], "--mutant: invalid choice: 'typo'"),
])
def test_cli_rejects_bad_options(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["formal", *argv])
    assert exit.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_names_unknown_property(capsys):
    assert main(["formal", "--properties", "hazard,speed"]) == 2
    err = capsys.readouterr().err
    assert "dypipe: error: unknown properties 'speed'; there are: invariants, hazard" in err, err
