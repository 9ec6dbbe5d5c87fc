"""The timing analysis of a routed design's SDF file (:mod:`dypipe.routed_timing`), on small
files written as nextpnr writes them; ``tests/test_synth.py`` checks it against nextpnr's own
critical path on a routed unit."""

import pytest

from dypipe import routed_timing as rt

# Two registers in unit ``a`` feed, through a LUT each, a register in unit ``b``; a block
# RAM in ``a`` (clock to output on CLKA) feeds the second LUT. Delays in ps, min:typ:max.
SDF = r"""(DELAYFILE
  (SDFVERSION "3.0")
  (DIVIDER /)
  (TIMESCALE 1ps)
  (CELL
    (CELLTYPE "top")
    (INSTANCE )
    (DELAY
      (ABSOLUTE
        (INTERCONNECT \$gbuf\$clk/CLKO dut.a.r0/CLK (0:0:0) (0:0:0))
        (INTERCONNECT dut.a.r0/Q dut.a.l0/A (100:200:300) (100:200:300))
        (INTERCONNECT dut.a.l0/F dut.b.s/M (1000:1500:2000) (1000:1500:2000))
        (INTERCONNECT dut.a.r1/Q dut.a.l1/B (100:150:200) (100:150:200))
        (INTERCONNECT dut.a.ram/DOA0 dut.a.l1/C (400:500:600) (400:500:600))
        (INTERCONNECT dut.a.l1/F dut.b.s/DI (50:80:100) (50:80:100))
        (INTERCONNECT dut.a.l1/F dut.a\/odd.r/M (10:20:30) (10:20:30))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE dut.a.r0)
    (DELAY
      (ABSOLUTE
        (IOPATH CLK Q (400:450:500) (400:450:500))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE dut.a.r1)
    (DELAY
      (ABSOLUTE
        (IOPATH CLK Q (400:450:500) (400:450:500))
      )
    )
  )
  (CELL
    (CELLTYPE "DP16KD")
    (INSTANCE dut.a.ram)
    (DELAY
      (ABSOLUTE
        (IOPATH CLKA DOA0 (5000:5400:5800) (5000:5400:5800))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE dut.a.l0)
    (DELAY
      (ABSOLUTE
        (IOPATH A F (200:220:240) (200:220:240))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE dut.a.l1)
    (DELAY
      (ABSOLUTE
        (IOPATH B F (200:220:240) (200:220:240))
        (IOPATH C F (200:220:240) (200:220:240))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE dut.b.s)
    (TIMINGCHECK
      (SETUPHOLD (posedge M) (posedge CLK) (0:0:0) (233:268:303))
      (SETUPHOLD (posedge DI) (posedge CLK) (50:70:90) (0:0:0))
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE dut.a/odd.r)
    (TIMINGCHECK
      (SETUPHOLD (posedge M) (posedge CLK) (0:0:0) (0:0:0))
    )
  )
)
"""


def unit_of(cell):
    return cell.split(".")[1] if cell.startswith("dut.") else "wrapper"


def timing():
    return rt.RoutedTiming(rt.read_sdf(SDF.splitlines()), unit_of)


def test_the_longest_path_sums_clock_to_output_nets_cells_and_setup():
    # Into dut.b.s: r0's 0.5 + 0.3 + 0.24 + 2.0 + setup 0 = 3.04 (M); the RAM's 5.8 + 0.6
    # + 0.24 + 0.1 + setup 0.09 = 6.83 (DI): the block RAM's is the critical path.
    t = timing()
    assert t.critical_ns == pytest.approx(6.83)
    first, *rest = t.longest_paths()
    assert first.ns == pytest.approx(6.83) and first.routing_ns == pytest.approx(0.7)
    assert first.start == "dut.a.ram.DOA0" and first.end == "dut.b.s.DI"
    assert first.units == [["a", 2], ["b", 1]]


def test_one_path_for_each_sequence_of_units():
    """The M input's path also goes from ``a`` to ``b``: it is left out; the escaped name
    (``a/odd``, ``/`` being the SDF's divider) is a cell of its own."""
    paths = timing().longest_paths()
    assert [p.end for p in paths] == ["dut.b.s.DI", "dut.a/odd.r.M"]
    assert paths[1].ns == pytest.approx(5.8 + 0.6 + 0.24 + 0.03)
    assert paths[1].units == [["a", 2], ["a/odd", 1]]


def test_late_inputs_counts_register_inputs_past_the_period_by_unit():
    t = timing()
    assert t.late_inputs(7.0) == {}
    assert t.late_inputs(6.0) == {"b": 1, "a/odd": 1}
    assert t.late_inputs(3.0) == {"b": 2, "a/odd": 1}, "M (3.04 ns) and DI"
    assert t.late_inputs(3.1) == {"b": 1, "a/odd": 1}


def test_the_report_lines_name_time_routing_and_units():
    lines = rt.format_paths(timing().longest_paths(1))
    assert lines[0].split() == ["6.8", "ns", "(", "0.7", "routing)", "a", "(2)", ">", "b",
                                "(1)"]
    assert lines[1].split() == ["from", "dut.a.ram.DOA0", "to", "dut.b.s.DI"]


def test_a_cell_nextpnr_made_counts_as_the_unit_before_it():
    """``unit_of`` gives None for a cell of nextpnr's own (a carry chain's continuation): it
    joins the unit of the cell before it on the path rather than splitting the unit."""
    def unit_of_with_made(cell):
        return {"dut.a.ram": "x", "dut.a.l1": None}.get(cell, unit_of(cell))
    first = rt.RoutedTiming(rt.read_sdf(SDF.splitlines()), unit_of_with_made).longest_paths()[0]
    assert first.units == [["x", 2], ["b", 1]]
