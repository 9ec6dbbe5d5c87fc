"""The Verilog for synthesis (`dypipe verilog`): one file, described by Amaranth alone, with the
memory port on the outside and nothing for simulation only inside."""

import re

import pytest

from dypipe.cli import main
from dypipe.tb.runner import TOPLEVEL

SIMULATION_ONLY = re.compile(r"\$(fread|fopen|fclose|writememh|readmemh|display|finish|"
                             r"value\$plusargs)\b")


@pytest.fixture(scope="module")
def top_v(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "top.v"
    assert main(["verilog", "--config", "small", "-o", str(path)]) == 0
    return path


def test_synthesis_verilog_is_one_self_contained_file(top_v):
    text = top_v.read_text()
    assert not SIMULATION_ONLY.search(text)
    # Module names may be escaped identifiers (``\dypipe_top.arbiter``), ended by a space.
    defined = set(re.findall(r"^module (\\?[\w.$]+)", text, re.M))
    instantiated = set(re.findall(r"^  (\\?[\w.$]+) +(?:#\(|\\?[\w.$]+ +\()$", text, re.M))
    assert TOPLEVEL in defined and len(instantiated) > 10
    assert not {"dypipe_dram", "dypipe_sram", "dypipe_mac_array", "dypipe_lanes"} & defined
    assert instantiated <= defined, instantiated - defined


def test_synthesis_verilog_has_the_memory_port(top_v):
    header = top_v.read_text().split(f"module {TOPLEVEL}(", 1)[1].split(");", 1)[0]
    for port in ("dram__req_valid", "dram__req_ready", "dram__req_write", "dram__req_addr",
                 "dram__req_wdata", "dram__req_wmask", "dram__req_tag", "dram__resp_valid",
                 "dram__resp_data", "dram__resp_tag", "start", "done", "error"):
        assert re.search(rf"\b{port}\b", header), port


# `verilator --lint-only` on the file alone: tests/test_system.py::test_cli_verilog_passes_lint
# (through `dypipe verilog --lint`, which lints it without any other file).
