"""`dypipe synth --generic`: the coarse cell counts from fixed `stat -width -json` output (no
tools needed), and one real run of a small unit where the tools are installed."""

import json

import pytest

from dypipe import synth
from dypipe.cli import main
from dypipe.generic_synth import KINDS, _kind, parse_generic_stat

# `stat -width -json` of a two-level design after `memory_unpack`, trimmed to what is read.
STAT = json.dumps({"modules": {
    "\\dypipe_top": {"num_memories": 1, "num_memory_bits": 4096, "num_cells_by_type": {
        "$sdffe_32": 2, "$alu_17": 1, "$memrd_v2": 2, "$memwr_v2": 1, "$meminit_v2": 1,
        "\\dypipe_top.pfu": 1}},
    "\\dypipe_top.pfu": {"num_memories": 0, "num_memory_bits": 0, "num_cells_by_type": {
        "$macc_v2": 3, "$mul_16": 1, "$mux_16": 4, "$pmux_8": 1, "$bmux_2_7": 1, "$dffe_256": 1,
        "$eq_3": 2, "$reduce_and_13": 1}},
}, "design": {}})


@pytest.mark.parametrize("cell, kind", [
    ("$sdffe_32", ("ff_bits", 32)), ("$dffe_256", ("ff_bits", 256)),
    ("$macc_v2", ("multipliers", 0)), ("$mul_16", ("multipliers", 0)),
    ("$alu_26", ("alus", 26)), ("$bmux_2_7", ("mux_bits", 2)), ("$pmux_8", ("mux_bits", 8)),
    ("$reduce_and_13", ("other", 0)), ("$logic_not_3", ("other", 0)),
])
def test_cell_kinds(cell, kind):
    assert _kind(cell) == kind


def test_counts_each_module_without_its_submodules():
    stats = parse_generic_stat(STAT)
    assert set(stats) == {"dypipe_top", "dypipe_top.pfu"}
    assert set(stats["dypipe_top"]) == set(KINDS)
    # The memory's port cells are not counted as cells; its bits are.
    assert stats["dypipe_top"] == {"ff_bits": 64, "multipliers": 0, "alus": 1, "alu_bits": 17,
                                   "mux_bits": 0, "memories": 1, "memory_bits": 4096,
                                   "other": 0}
    assert stats["dypipe_top.pfu"] == {"ff_bits": 256, "multipliers": 4, "alus": 0,
                                       "alu_bits": 0, "mux_bits": 4 * 16 + 8 + 2,
                                       "memories": 0, "memory_bits": 0, "other": 3}


def test_not_a_stat_is_an_error():
    with pytest.raises(ValueError, match="not the output of `stat -json`"):
        parse_generic_stat("{}")


def test_bad_module_is_named(capsys):
    assert main(["synth", "--generic", "--module", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown module 'nope'" in err and "Traceback" not in err, err


@pytest.mark.fpga
@pytest.mark.skipif(not all((synth.FPGA_VENV / "bin" / tool).exists() for tool in synth.TOOLS),
                    reason="the FPGA tools are not in .venv-fpga (`dypipe synth` installs "
                    "them on first use)")
def test_generic_synthesis_of_the_context_buffer(tmp_path, capsys):
    out = tmp_path / "cb.json"
    assert main(["synth", "--generic", "--module", "cb", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["generic"] and record["top"] == "dypipe_cb"
    # The context buffer of small: cb_bytes 1024 in one memory.
    assert record["memories"] >= 1 and record["memory_bits"] == 1024 * 8, record
    assert set(record["stages"]) == {"rtlil", "synth"}
    assert "coarse generic synthesis" in capsys.readouterr().out
