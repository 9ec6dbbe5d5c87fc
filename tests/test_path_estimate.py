"""The path estimate of ``dypipe synth`` on small hand-written Yosys netlists."""

import pytest

from dypipe import path_estimate
from dypipe.path_estimate import CELL_NS, NET_NS, SOURCE_NS, flatten, format_paths

FF, LUT, CARRY = "TRELLIS_FF", "LUT4", "CCU2C"
_DIRS = {
    FF: {"CLK": "input", "DI": "input", "Q": "output"},
    LUT: {"A": "input", "B": "input", "Z": "output"},
    CARRY: {"A0": "input", "CIN": "input", "S0": "output", "COUT": "output"},
    "PFUMX": {"ALUT": "input", "BLUT": "input", "C0": "input", "Z": "output"},
}


def cell(ctype, **conns):
    """A leaf cell as Yosys writes it (``$paramod`` prefix included, as for parameterized
    cells)."""
    return {"type": f"$paramod$0123\\{ctype}",
            "port_directions": {p: _DIRS[ctype][p] for p in conns},
            "connections": {p: list(bits) for p, bits in conns.items()}}


def module(ports, cells):
    return {"ports": {name: {"direction": d, "bits": bits} for name, (d, bits) in ports.items()},
            "cells": cells}


def netlist(top_cells, sub_cells=None, sub_ports=None):
    modules = {"top": module({"clk": ("input", [2])}, top_cells)}
    if sub_cells is not None:
        modules["top.u"] = module(sub_ports, sub_cells)
    return {"modules": modules}


def longest_paths(netlist, top, **options):
    """:func:`dypipe.path_estimate.longest_paths` of the netlist ``top`` flattened."""
    return path_estimate.longest_paths(flatten(netlist, top), **options)


def test_chain_of_luts_between_two_registers():
    # q(10) -> LUT -> 11 -> LUT -> 12 -> FF
    n = netlist({"a": cell(FF, CLK=[2], DI=[9], Q=[10]),
                 "l1": cell(LUT, A=[10], B=["0"], Z=[11]),
                 "l2": cell(LUT, A=[11], B=[10], Z=[12]),
                 "b": cell(FF, CLK=[2], DI=[12], Q=[13])})
    paths = longest_paths(n, "top", design="")
    expect = SOURCE_NS[FF][1] + 3 * NET_NS + 2 * CELL_NS[LUT]
    assert paths[0].ns == pytest.approx(expect)
    assert (paths[0].start, paths[0].end) == ("a", "b.DI")
    assert paths[0].units == [["top", 3]]


def test_flatten_maps_bits_through_ports_and_names_units():
    # The top's register feeds a unit's LUT through the unit's port; the LUT's output comes
    # back out to the top's register.
    sub = {"l": cell(LUT, A=[3], B=["1"], Z=[4])}
    ports = {"i": ("input", [3]), "o": ("output", [4])}
    top = {"a": cell(FF, CLK=[2], DI=[20], Q=[10]),
           "u": {"type": "top.u", "port_directions": {"i": "input", "o": "output"},
                 "connections": {"i": [10], "o": [11]}},
           "b": cell(FF, CLK=[2], DI=[11], Q=[20])}
    n = netlist(top, sub, ports)
    leaves = flatten(n, "top")
    names = sorted(name for name, _, _, _ in leaves)
    assert names == ["a", "b", "u.l"]
    ports = {name: ports for name, _, ports, _ in leaves}
    assert ports["u.l"]["A"] == ("input", ports["a"]["Q"][1])
    assert ports["u.l"]["Z"] == ("output", ports["b"]["DI"][1])
    paths = longest_paths(n, "top", design="")
    assert paths[0].units == [["top", 1], ["u", 1]]
    assert paths[0].ns == pytest.approx(SOURCE_NS[FF][1] + 2 * NET_NS + CELL_NS[LUT])


def test_carry_chains_and_slice_muxes_cost_no_routing():
    n = netlist({"a": cell(FF, CLK=[2], DI=[9], Q=[10]),
                 "c0": cell(CARRY, A0=[10], CIN=["0"], S0=[30], COUT=[11]),
                 "c1": cell(CARRY, A0=["0"], CIN=[11], S0=[31], COUT=[12]),
                 "c2": cell(CARRY, A0=["0"], CIN=[12], S0=[13], COUT=[32]),
                 "l": cell(LUT, A=[13], B=["0"], Z=[14]),
                 "m": cell("PFUMX", ALUT=[14], BLUT=["0"], C0=["0"], Z=[15]),
                 "b": cell(FF, CLK=[2], DI=[15], Q=[9])})
    paths = longest_paths(n, "top", design="")
    expect = (SOURCE_NS[FF][1] + NET_NS + CELL_NS[CARRY] + 2 * CELL_NS["CCU2C_carry"]
              - CELL_NS["CCU2C_carry"] + CELL_NS[LUT]          # c2's carry in to its sum
              + NET_NS + CELL_NS[LUT] + 0.1 + CELL_NS["PFUMX"] + NET_NS)
    assert paths[0].ns == pytest.approx(expect)


def test_one_path_per_sequence_of_units_longest_first():
    # Two registers fed from the same source through one and two LUTs: same units, one path.
    n = netlist({"a": cell(FF, CLK=[2], DI=[9], Q=[10]),
                 "l1": cell(LUT, A=[10], B=["0"], Z=[11]),
                 "l2": cell(LUT, A=[11], B=["0"], Z=[12]),
                 "b": cell(FF, CLK=[2], DI=[11], Q=[13]),
                 "c": cell(FF, CLK=[2], DI=[12], Q=[14])})
    paths = longest_paths(n, "top", design="")
    assert len(paths) == 1 and paths[0].end == "c.DI"
    units, ends = format_paths(paths)
    assert "top (3)" in units and "from a" in ends and "to c.DI" in ends


def instance(module_name, **conns):
    return {"type": module_name, "port_directions": {p: d for p, (d, _) in conns.items()},
            "connections": {p: bits for p, (_, bits) in conns.items()}}


def test_units_are_the_instances_below_the_design():
    # wrapper register -> the design's own LUT -> a LUT in its unit u -> wrapper register;
    # the design's cell names hold dots (Amaranth's struct fields), which are not instances.
    n = {"modules": {
        "top": module({"clk": ("input", [2])}, {
            "chain": cell(FF, CLK=[2], DI=[9], Q=[10]),
            "dut": instance("top.dut", i=("input", [10]), o=("output", [12])),
            "out": cell(FF, CLK=[2], DI=[12], Q=[9])}),
        "top.dut": module({"i": ("input", [3]), "o": ("output", [4])}, {
            "rec.field_LUT4_Z": cell(LUT, A=[3], B=["0"], Z=[5]),
            "u": instance("top.dut.u", a=("input", [5]), z=("output", [4]))}),
        "top.dut.u": module({"a": ("input", [7]), "z": ("output", [8])}, {
            "y": cell(LUT, A=[7], B=["0"], Z=[8])}),
    }}
    paths = longest_paths(n, "top", design="dut")
    assert paths[0].units == [["wrapper", 1], ["top", 1], ["u", 1]]
    assert paths[0].end == "out.DI"


@pytest.mark.parametrize("count", [1, 2])
def test_count_limits_the_paths(count):
    # Three sequences of units: u, v, and u then w.
    n = {"modules": {
        "top": module({"clk": ("input", [2])}, {
            "a": cell(FF, CLK=[2], DI=[9], Q=[10]),
            "u": instance("top.u", a=("input", [10]), z=("output", [11])),
            "v": instance("top.v", a=("input", [10]), z=("output", [12])),
            "w": instance("top.w", a=("input", [11]), z=("output", [13])),
            "b": cell(FF, CLK=[2], DI=[12], Q=[14]),
            "c": cell(FF, CLK=[2], DI=[13], Q=[15]),
            "d": cell(FF, CLK=[2], DI=[11], Q=[16])}),
        **{f"top.{u}": module({"a": ("input", [3]), "z": ("output", [4])},
                              {"l": cell(LUT, A=[3], B=["0"], Z=[4])}) for u in "uvw"},
    }}
    paths = longest_paths(n, "top", count=count, design="")
    assert len(paths) == count
    assert paths[0].units == [["top", 1], ["u", 1], ["w", 1]]
    assert len(longest_paths(n, "top", count=9, design="")) == 3


def test_registered_between_units_cuts_every_path_at_a_unit_boundary():
    # a -> u's LUT -> v's two LUTs -> b: one path through both units, or two paths, each
    # from or to a register at the boundary.
    n = {"modules": {
        "top": module({"clk": ("input", [2])}, {
            "a": cell(FF, CLK=[2], DI=[9], Q=[10]),
            "u": instance("top.u", a=("input", [10]), z=("output", [11])),
            "v": instance("top.v", a=("input", [11]), z=("output", [12])),
            "b": cell(FF, CLK=[2], DI=[12], Q=[9])}),
        "top.u": module({"a": ("input", [3]), "z": ("output", [4])},
                        {"l": cell(LUT, A=[3], B=["0"], Z=[4])}),
        "top.v": module({"a": ("input", [3]), "z": ("output", [5])},
                        {"l1": cell(LUT, A=[3], B=["0"], Z=[4]),
                         "l2": cell(LUT, A=[4], B=["0"], Z=[5])}),
    }}
    whole = longest_paths(n, "top", design="")[0]     # then b -> a, the top's own
    assert whole.units == [["top", 1], ["u", 1], ["v", 2]]
    ff = SOURCE_NS[FF][1]
    assert whole.ns == pytest.approx(ff + 4 * NET_NS + 3 * CELL_NS[LUT])
    cut = longest_paths(n, "top", design="", registered_between_units=True)
    assert [p.units for p in cut[:2]] == [[["v", 2]], [["u", 1]]]
    assert cut[0].ns == pytest.approx(ff + 3 * NET_NS + 2 * CELL_NS[LUT])
    assert cut[1].ns == pytest.approx(ff + 2 * NET_NS + CELL_NS[LUT])
    assert cut[1].end == "u.l.boundary"


def test_late_inputs_counts_register_inputs_past_the_period_by_unit():
    # Two registers' inputs in unit u: one behind two LUTs, one straight from a register;
    # and the top's register input behind one LUT.
    sub = {"l1": cell(LUT, A=[3], B=["0"], Z=[5]), "l2": cell(LUT, A=[5], B=["0"], Z=[6]),
           "x": cell(FF, CLK=[2], DI=[6], Q=[7]), "y": cell(FF, CLK=[2], DI=[3], Q=[8])}
    ports = {"i": ("input", [3]), "o": ("output", [7])}
    top = {"a": cell(FF, CLK=[2], DI=[12], Q=[10]), "u": {"type": "top.u", "connections":
                                                          {"i": [10], "o": [11]}},
           "l": cell(LUT, A=[11], B=["0"], Z=[12])}
    cells = flatten(netlist(top, sub, ports), "top")
    two_luts = SOURCE_NS[FF][1] + 3 * NET_NS + 2 * CELL_NS[LUT]
    no_lut = SOURCE_NS[FF][1] + NET_NS
    one_lut = SOURCE_NS[FF][1] + 2 * NET_NS + CELL_NS[LUT]
    assert path_estimate.late_inputs(cells, two_luts - 0.01, design="") == {"u": 1}
    assert path_estimate.late_inputs(cells, two_luts, design="") == {}
    assert path_estimate.late_inputs(cells, no_lut - 0.01, design="") == {"u": 2, "top": 1}
    assert path_estimate.late_inputs(cells, one_lut - 0.01, design="") == {"u": 1, "top": 1}
