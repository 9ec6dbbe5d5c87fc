"""``dypipe equiv``: each hand-written Verilog twin proven equivalent to its Amaranth description.

The SRAM banks, the MAC array and the lane arithmetic have two backends (``rtl/sram.py``,
``rtl/pfu.py``, ``rtl/lanes.py``): ``"amaranth"``, the description, and ``"verilog"``, an
``Instance`` of a hand-written module in ``rtl/verilog/`` that Verilator simulates faster.
For every such component that a preset's top level instantiates (found by elaborating
:class:`~dypipe.rtl.top.Top`, so a new preset or a new use is covered without editing this
file), :func:`prove` builds both backends with the same parameters and ports, and SymbiYosys
proves them equivalent:

* both sides are converted to RTLIL (the Verilog side with the twin's ``.v`` file), flattened,
  their memories mapped to registers (``memory``), and joined by ``miter -equiv``, which
  asserts in every cycle that every output agrees;
* every register of both sides is a port: the outputs of the MAC array and the lanes are
  registers, and an SRAM's rows are exposed as extra outputs, row by row, so the miter also
  asserts that the two memories agree. The Amaranth SRAM is a live-value-table memory (a lane
  copy, a row copy and a table of which copy holds each lane, the XOR of two memories): its
  exposed row is the live value, each lane taken from the copy the table names
  (:func:`_lvt_view`). Then k-induction (``mode prove``, ``depth 2``, ``smtbmc boolector``)
  is a proof for all cycles;
* where the two sides build the same multipliers and adders (the MAC array's products and
  its adder tree, the AVG product of the vector lanes), the miter's ``opt_merge`` makes them
  one cell each, so the solver never compares two multipliers;
* ``LaneFinish`` is proven one output lane at a time (:data:`BY_LANE`), all lanes together
  covering every output bit;
* the initial state is all zero on both sides: Amaranth's ``init`` and memory ``init=[]``,
  and the twins' registers and rows as Verilator starts them (it zero-initialises;
  ``tb/toolchain.py`` builds with ``--x-initial fast``);
* reset is never asserted (the twins have no reset; the Amaranth side's output registers
  clear on ``rst``, the twins' do not);
* the inputs keep the component's contract (:data:`ASSUMPTIONS`; none today: an SRAM's two
  write ports may write one lane of one row in the same cycle, and both sides keep the lane
  port's data);
* an SRAM bank deeper than ``max_rows`` is proven at its full width, lanes and grouping but
  ``max_rows`` rows (a power of two): depth only sets ``ADDR_BITS`` and the number of rows,
  and both sides index their rows with the address as it is.

docs/formal.md has the results and times. The tools are ``dypipe formal``'s
(:func:`dypipe.formal.ensure_tools`); work files go to ``build/equiv/``.
"""

import dataclasses
import json
import pathlib
import re
import shutil

from amaranth import Module, ClockDomain, ClockSignal, Elaboratable, Value
from amaranth.back import rtlil
from amaranth.hdl import Fragment, Instance

from .config import ELEM_BITS, PRESETS, get_config
from .formal import ROOT, ensure_tools, run_sby, run_yosys
from .rtl.lanes import LaneFold, LaneFinish
from .rtl.pfu import MacArray
from .rtl.sram import SRAM
from .rtl.top import Top

__all__ = ["TWINS", "MUTANTS", "ASSUMPTIONS", "Twin", "Result", "twins", "prove", "check", "main"]

VERILOG = ROOT / "rtl" / "verilog"
BUILD = ROOT / "build" / "equiv"
ENGINE = "smtbmc boolector"
METHOD = f"miter -equiv, all state exposed, k-induction ({ENGINE})"

#: The components with a hand-written twin, and the file that holds it.
TWINS = {SRAM: "dypipe_sram.v", MacArray: "dypipe_mac_array.v", LaneFold: "dypipe_lanes.v",
         LaneFinish: "dypipe_lanes.v"}

#: Deliberately altered twins, to show that the check fails: ``(class, file, text, changed)``.
MUTANTS = {
    "rounding": (LaneFinish, "dypipe_lanes.v", "(64'sd1 <<< (F + wshift - 1))",
                 "(64'sd1 <<< (F + wshift - 2))"),
    # The row port written last, so that it wins when both write ports meet on one lane.
    "collision": (SRAM, "dypipe_sram.v",
                  "if (row_en) mem[row_addr] <= row_data;\n"
                  "        if (lane_en) mem[lane_addr][lane_sel * LANE +: LANE] <= lane_data;",
                  "if (lane_en) mem[lane_addr][lane_sel * LANE +: LANE] <= lane_data;\n"
                  "        if (row_en) mem[row_addr] <= row_data;"),
    # The sign of each row's last product flipped.
    "mac-sign": (MacArray, "dypipe_mac_array.v", "p[r*C + c] <= $signed(w[",
                 "p[r*C + c] <= (c == C - 1 ? -1 : 1) * $signed(w["),
}

#: Components whose multipliers are cut to free values (``cutpoint``) once ``opt_merge`` made
#: the two sides share them (a 16 x 16 product of the same two input lanes is one cell). The
#: sides must then agree for every value of every product, so they agree for the real
#: products; cutting only widens what the solver must prove, so it can make a check fail
#: but never pass wrongly. With the twin summing by the same balanced tree, its adders are
#: shared too and little is left for the solver.
CUT_PRODUCTS = {MacArray}

#: Components proven one output lane at a time: ``{class: (port, lane width, lanes
#: parameter)}``. The lanes compute independently (the twin in a loop, the description lane by
#: lane), so the miter of lane ``k`` compares only bits ``[k*width, (k+1)*width)`` of ``port``
#: on both sides, every other lane's logic is removed (``splitcells; opt_clean``), and each
#: lane is a SymbiYosys task of its own. Together the tasks compare every bit of every output
#: register in every cycle, as the whole miter does: the same proof, in pieces the solver
#: finishes (eight lanes of the vector unit's ``LaneFinish`` at once took 407 s, one 30 s).
BY_LANE = {LaneFinish: ("out", ELEM_BITS, "lanes")}

#: Rows an SRAM bank is proven with at most (its full width, lanes and grouping).
MAX_ROWS = 4
#: SymbiYosys's depth. With every register exposed, 1 proves it (step 0 from the zero state,
#: then 1-induction); 2 also checks the first cycle of work from the zero state, so that a
#: twin that computes something else fails with a trace (FAIL) rather than only a failed
#: induction step (UNKNOWN). 3 made the base case of the lane fold's products of products
#: run for over 5 minutes.
DEPTH = 2
#: Components proven to a greater depth: the MAC array's products are a stage of registers
#: inside it (not exposed: the two sides' product registers take the same shared, cut
#: products, so ``opt_merge`` makes them one), so its first result comes two edges after
#: its inputs, and a twin that computes a wrong product fails only at step 2.
DEPTHS = {MacArray: 3}
#: Seconds a check may take (status TIMEOUT after that).
TIMEOUT = 1800


@dataclasses.dataclass(frozen=True)
class Twin:
    """One parameter set of a component with a twin, and where the presets use it."""
    cls: type
    params: tuple
    uses: tuple      # "preset: path.in.top"

    @property
    def name(self):
        args = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.cls.__name__}({args})"

    @property
    def slug(self):
        return self.cls.__name__ + "-" + "-".join(f"{k}{int(v)}" for k, v in self.params)

    def build(self, backend, **changes):
        return self.cls(**{**dict(self.params), **changes}, backend=backend)


@dataclasses.dataclass
class Result:
    """One twin's outcome: ``status`` PASS (equivalent), FAIL (not: a counterexample is in
    ``detail``'s directory), UNKNOWN (the induction step failed), TIMEOUT or ERROR; ``covered`` says
    what the check covered when it is less than the preset's component."""
    twin: str
    file: str
    presets: list
    status: str
    seconds: float
    method: str = METHOD
    covered: str = "as instantiated"
    step: int = None
    detail: str = ""


def _walk(fragment, path):
    for obj in getattr(fragment, "origins", ()):
        if type(obj) in TWINS:
            yield obj, path
            return
    for sub, name, _ in fragment.subfragments:
        yield from _walk(sub, f"{path}.{name}" if path else name)


def twins(presets=tuple(PRESETS)):
    """Every distinct parameter set a twin is instantiated with by the top level of each of
    ``presets`` (built with ``backend="verilog"``), in order of first use."""
    found = {}
    for preset in presets:
        top = Fragment.get(Top(get_config(preset), backend="verilog"), None)
        for component, path in _walk(top, ""):
            key = (type(component), tuple(component.params.items()))
            found.setdefault(key, []).append(f"{preset}: {path}")
    return [Twin(cls, params, tuple(uses)) for (cls, params), uses in found.items()]


# -- the two sides ------------------------------------------------------------------------

#: What a component's contract says about its inputs: ``{class: function(component) -> list
#: of Assume statements}``, assumed on both sides. Empty: the SRAM's two write ports may meet
#: on one lane (both sides keep the lane port's data), which an assumption used to exclude.
ASSUMPTIONS = {}


class _Harness(Elaboratable):
    """A component in a clock domain without reset, so that both sides have the same ports
    (the component's and ``clk``), and the assumptions of its contract."""

    def __init__(self, dut):
        self.dut = dut

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain(reset_less=True)
        m.submodules.dut = self.dut
        if type(self.dut) in ASSUMPTIONS:
            m.d.comb += ASSUMPTIONS[type(self.dut)](self.dut)
        return m


def _rtlil(dut, name):
    ports = [Value.cast(v) for _, _, v in dut.signature.flatten(dut)]
    return rtlil.convert(_Harness(dut), name=name, ports=[*ports, ClockSignal()])


def _banks(sram):
    """``[(name, width)]`` of the ``dypipe_sram`` instances the Verilog backend of ``sram``
    builds, in row order (a wide row is split into lane groups)."""
    top = Fragment.get(sram, None)
    return [(name, int(sub.parameters["WIDTH"])) for sub, name, _ in top.subfragments
            if isinstance(sub, Instance) and sub.type == "dypipe_sram"]


def _expose_rows(gold, gate, rows):
    """Yosys commands (for the gold and the gate module) that make each row of the memory an
    output ``row<r>_<bank>``, so that the miter compares the two memories row by row.

    With a row write port, the gold side's rows are not one memory: its commands expose the
    lane copy, the row copy and the two halves of the live-value table row by row
    (``lane_copy<r>``, ``row_copy<r>``, ``table_a<r>``, ``table_b<r>``), and
    :func:`_lvt_view` computes ``row<r>_<bank>``."""
    gold_cmds, gate_cmds, lo = [], [], 0
    for name, width in _banks(gate):
        for r in range(rows):
            port = f"row{r}_{name}"
            if not gold.row_write:
                gold_cmds.append(f"add -output {port} {width}; connect -set {port} "
                                 f"\\dut.lane_mem[{r}][{lo + width - 1}:{lo}]")
            gate_cmds.append(f"add -output {port} {width}; "
                             f"connect -set {port} \\dut.{name}.mem[{r}]")
        lo += width
    if gold.row_write:
        width, lanes = gold.params["width"], gold.params["lanes"]
        for r in range(rows):
            for port, wire, bits in ((f"lane_copy{r}", f"lane_mem[{r}]", width),
                                     (f"row_copy{r}", f"row_mem[{r}]", width),
                                     (f"table_a{r}", f"table_a[{r}]", lanes),
                                     (f"table_b{r}", f"table_b[{r}]", lanes)):
                gold_cmds.append(f"add -output {port} {bits}; "
                                 f"connect -set {port} \\dut.{wire}")
    return gold_cmds, gate_cmds



_IL_PORT = re.compile(r"^\s*wire width (\d+) (input|output) \d+\s+\\(\S+)$", re.M)


def _il_ports(text, module):
    """``[(name, direction, width)]`` of ``module``'s ports in Amaranth's RTLIL ``text``."""
    body = text.split(f"module \\{module}\n", 1)[1].split("\nend\n", 1)[0]
    return [(name, direction, int(width)) for width, direction, name in _IL_PORT.findall(body)]


def _lvt_view(gold_il, gold, gate, rows):
    """Verilog of module ``gold``: ``gold_raw`` (the Amaranth SRAM with the lane copy, the row
    copy and the live-value table's two memories exposed by :func:`_expose_rows`) with its
    own ports, and each row's live value, sliced as the twin's banks, as ``row<r>_<bank>``."""
    width, lanes = gold.params["width"], gold.params["lanes"]
    lane_width = width // lanes
    outer = _il_ports(gold_il, "gold_raw")
    raw = [f"{part}{r}" for r in range(rows)
           for part in ("lane_copy", "row_copy", "table_a", "table_b")]
    views, lo = [], 0
    for bank, bits in _banks(gate):
        views += [(f"row{r}_{bank}", r, lo, bits) for r in range(rows)]
        lo += bits
    lines = [f"module gold({', '.join([n for n, _, _ in outer] + [v[0] for v in views])});"]
    lines += [f"  {d} [{w - 1}:0] {n};" for n, d, w in outer]
    lines += [f"  output [{bits - 1}:0] {port};" for port, _, _, bits in views]
    for r in range(rows):
        lines.append(f"  wire [{width - 1}:0] lane_copy{r}, row_copy{r}, live_row{r};")
        lines.append(f"  wire [{lanes - 1}:0] table_a{r}, table_b{r}, live{r};")
        lines.append(f"  assign live{r} = table_a{r} ^ table_b{r};")
        lanes_text = ", ".join(
            f"live{r}[{lane}] ? row_copy{r}[{(lane + 1) * lane_width - 1}:{lane * lane_width}]"
            f" : lane_copy{r}[{(lane + 1) * lane_width - 1}:{lane * lane_width}]"
            for lane in reversed(range(lanes)))
        lines.append(f"  assign live_row{r} = {{{lanes_text}}};")
    conns = [f".{n}({n})" for n, _, _ in outer] + [f".{n}({n})" for n in raw]
    lines.append(f"  gold_raw raw({', '.join(conns)});")
    lines += [f"  assign {port} = live_row{r}[{lo + bits - 1}:{lo}];"
              for port, r, lo, bits in views]
    return "\n".join(lines + ["endmodule", ""])


#: How each side is prepared for the miter.
# wreduce gives both sides' multipliers and adders their operands' widths, so that the
# miter's opt_merge can share the ones with equal inputs. A twin's temporaries (blocking
# variables, function locals) are undefined on the edges where its `if (en)` does not
# assign them, so Yosys puts `en ? value : x` between every two uses; -mux_undef takes
# the value (the twins read no temporary before assigning it on the same edge, and
# outside `en` nothing they compute is stored), which keeps a twin's adder tree the same
# cells as its description's.
PREP = ("proc; flatten; opt_clean; memory; opt -mux_undef; wreduce; opt_clean; "
        "setundef -zero -init")


def _reads(files):
    return [f"read_rtlil {f}" if f.endswith(".il") else f"read_verilog {f}" for f in files]


def _load(name, files, prep=True):
    """Yosys commands that read side ``name`` from ``files`` and prepare it (unless read
    prepared)."""
    return [*_reads(files), f"hierarchy -check -top {name}", *([PREP] if prep else [])]


def _side_script(name, files, cmds, prep=True, view=None):
    """Yosys commands that read side ``name`` from ``files``, prepare it (unless read
    prepared), run ``cmds`` on it and stash it. With ``view`` (a Verilog file defining
    ``name``), the side's RTLIL defines ``<name>_raw`` and the view wraps it once ``cmds``
    exposed its state."""
    top = f"{name}_raw" if view else name
    wrap = [f"read_verilog {view}", f"hierarchy -check -top {name}", "flatten",
            "opt_clean"] if view else []
    return "\n".join([*_load(top, files, prep), *cmds, "opt_clean", *wrap,
                      f"design -stash {name}"])


def _prep_script(twin_file):
    """A Yosys script that prepares both sides once and writes them to ``<side>_prep.il``."""
    lines = []
    for name, files in (("gold", ["gold.il"]), ("gate", ["gate.il", twin_file])):
        lines += [*_load(name, files), "opt_clean", f"write_rtlil {name}_prep.il",
                  "design -reset"]
    return "\n".join(lines) + "\n"


def _lane_cmds(port, width, k):
    """Yosys commands that keep only lane ``k`` of output ``port`` (for each side)."""
    lane = f"{port}_lane{k}"
    return [f"delete -output w:{port}", f"add -output {lane} {width}",
            f"connect -set {lane} {port}[{(k + 1) * width - 1}:{k * width}]", "splitcells"]


def _sby_text(files, gold, gate, timeout, cut, depth=DEPTH):
    """``equiv.sby``: ``gold`` and ``gate`` are :func:`_side_script` texts, ``files`` what they
    read."""
    script = "\n".join([
        gold, gate,
        "design -copy-from gold -as gold gold",
        "design -copy-from gate -as gate gate",
        "miter -equiv -flatten -make_assert gold gate miter",
        "hierarchy -top miter",
        "opt_merge; opt_clean",
        *(["cutpoint t:$mul"] if cut else []),
    ])
    listed = "\n".join(files)
    return (f"[options]\nmode prove\ndepth {depth}\nmulticlock off\ntimeout {timeout}\n\n"
            f"[engines]\n{ENGINE}\n\n[script]\n{script}\n\n[files]\n{listed}\n")


def _write(directory, twin, max_rows, mutant, timeout):
    """The two sides, the twin's file (altered by ``mutant``) and the SymbiYosys files in
    ``directory``; returns their names (``equiv``, or ``lane<k>`` for each lane of a
    :data:`BY_LANE` component) and what the check covers."""
    changes, covered = {}, "as instantiated"
    if twin.cls is SRAM:
        depth = dict(twin.params)["depth"]
        rows = min(depth, max_rows)
        rows = 1 << (rows.bit_length() - 1)     # a power of two: every address is a row
        if rows != depth:
            changes["depth"] = rows
            covered = f"{rows} of {depth} rows (full width, lanes and grouping)"
    gold, gate = twin.build("amaranth", **changes), twin.build("verilog", **changes)
    lvt = twin.cls is SRAM and gold.row_write
    gold_il = _rtlil(gold, "gold_raw" if lvt else "gold")
    (directory / "gold.il").write_text(gold_il)
    (directory / "gate.il").write_text(_rtlil(gate, "gate"))
    twin_file = TWINS[twin.cls]
    text = (VERILOG / twin_file).read_text()
    if mutant:
        _, _, old, new = MUTANTS[mutant]
        if old not in text:
            raise ValueError(f"mutant {mutant!r}: {old!r} is not in {twin_file}")
        text = text.replace(old, new, 1)
    (directory / twin_file).write_text(text)
    rows = changes.get("depth", 0) or dict(twin.params).get("depth")
    expose = _expose_rows(gold, gate, rows) if twin.cls is SRAM else ([], [])
    view = "gold_lvt.v" if lvt else None
    if lvt:
        (directory / view).write_text(_lvt_view(gold_il, gold, gate, rows))
    cut = twin.cls in CUT_PRODUCTS
    if cut:
        covered = "products cut to free values once shared by both sides"
    if twin.cls not in BY_LANE:
        text = _sby_text(["gold.il", "gate.il", twin_file] + ([view] if view else []),
                         _side_script("gold", ["gold.il"], expose[0], view=view),
                         _side_script("gate", ["gate.il", twin_file], expose[1]), timeout, cut,
                         DEPTHS.get(twin.cls, DEPTH))
        (directory / "equiv.sby").write_text(text)
        return ["equiv"], covered
    # Each lane's task reads the two sides prepared once (prep.ys, run by prove()).
    (directory / "prep.ys").write_text(_prep_script(twin_file))
    port, width, key = BY_LANE[twin.cls]
    lanes = dict(twin.params)[key]
    for k in range(lanes):
        cmds = _lane_cmds(port, width, k)
        text = _sby_text(["gold_prep.il", "gate_prep.il"],
                         _side_script("gold", ["gold_prep.il"], cmds, prep=False),
                         _side_script("gate", ["gate_prep.il"], cmds, prep=False), timeout, cut)
        (directory / f"lane{k}.sby").write_text(text)
    return [f"lane{k}" for k in range(lanes)], f"all {lanes} lanes, one task each"


def _failed_step(output):
    """The cycle of the base case's counterexample, from SymbiYosys's log."""
    found = re.findall(r"failed assertion .* step (\d+)", output)
    return int(found[0]) if found else None


def prove(twin, *, max_rows=MAX_ROWS, mutant=None, timeout=TIMEOUT):
    """Prove the twin of ``twin`` (a :class:`Twin`) equivalent to its Amaranth description;
    ``mutant`` (a key of :data:`MUTANTS`) alters the twin first; after ``timeout`` seconds
    the status is TIMEOUT. Returns a :class:`Result`."""
    directory = BUILD / (twin.slug + (f"-mutant-{mutant}" if mutant else ""))
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    tasks, covered = _write(directory, twin, max_rows, mutant, timeout)
    presets = sorted({use.split(":")[0] for use in twin.uses})
    seconds = 0.0
    if (directory / "prep.ys").exists():
        ok, seconds, output = run_yosys(directory, "prep")
        if not ok:
            return Result(twin.name, TWINS[twin.cls], presets, "ERROR", seconds,
                          covered=covered, detail=f"yosys failed: see {directory / 'prep.log'}")
    for i, task in enumerate(tasks):    # one at a time; the first that does not pass decides
        status, took, output, detail = run_sby(directory, task)
        seconds += took
        if status == "PASS" and seconds > timeout and i + 1 < len(tasks):
            status, detail = "TIMEOUT", f"{i + 1} of {len(tasks)} tasks passed in {seconds:.0f} s"
        if status != "PASS":
            if len(tasks) > 1:
                detail = f"{task}: {detail}"
            break
    step = _failed_step(output) if status == "FAIL" else None
    return Result(twin.name, TWINS[twin.cls], presets, status, seconds, covered=covered,
                  step=step, detail=detail)


def check(presets=tuple(PRESETS), *, only=None, max_rows=MAX_ROWS, mutant=None,
          timeout=TIMEOUT, log=print):
    """Prove every twin the ``presets`` instantiate (``only``: those whose class name is in
    it; with ``mutant``, those of the altered class, until one fails), one at a time, with a
    progress line each. Returns the :class:`Result` list."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, not {max_rows!r}")
    if mutant is not None and mutant not in MUTANTS:
        raise ValueError(f"unknown mutant {mutant!r}; there are: {', '.join(MUTANTS)}")
    names = {cls.__name__ for cls in TWINS}
    if only is not None and set(only) - names:
        raise ValueError(f"unknown twins {', '.join(sorted(set(only) - names))}; "
                         f"there are: {', '.join(sorted(names))}")
    todo = [t for t in twins(presets) if (only is None or t.cls.__name__ in only)
            and (mutant is None or t.cls is MUTANTS[mutant][0])]
    ensure_tools(log)
    results = []
    for i, twin in enumerate(todo, 1):
        log(f"[{i}/{len(todo)}] {twin.name} ({TWINS[twin.cls]}; "
            f"{', '.join(sorted({u.split(':')[0] for u in twin.uses}))}) ...", end=" ")
        r = prove(twin, max_rows=max_rows, mutant=mutant, timeout=timeout)
        at = f" at step {r.step}" if r.step is not None else ""
        part = f" [{r.covered}]" if r.covered != "as instantiated" else ""
        log(f"{r.status}{at} in {r.seconds:.1f} s{part}")
        results.append(r)
        if mutant and r.status == "FAIL":
            break       # caught: the others need not run
    return results


def summary(results):
    """The results as a table."""
    lines = [f"{'twin':<58} {'presets':<12} {'status':<7} {'seconds':>8}  covered"]
    for r in results:
        lines.append(f"{r.twin:<58} {','.join(r.presets):<12} {r.status:<7} "
                     f"{r.seconds:>8.1f}  {r.covered}")
    return "\n".join(lines)


def _print(message="", end="\n"):
    print(message, end=end, flush=True)


def main(args):
    """``dypipe equiv``: returns 0 when every twin is proven equivalent (with ``--mutant``:
    when the altered twin is found not equivalent), else 1."""
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    only = [t.strip() for t in args.twins.split(",") if t.strip()] if args.twins else None
    what = f", the {args.mutant} mutant" if args.mutant else ""
    _print(f"Verilog twins of {', '.join(presets)}{what}: {METHOD}; SRAM banks with at most "
           f"{args.max_rows} rows")
    results = check(presets, only=only, max_rows=args.max_rows, mutant=args.mutant,
                    timeout=args.timeout, log=_print)
    _print(summary(results))
    if args.json:
        record = {"presets": presets, "method": METHOD, "max_rows": args.max_rows,
                  "mutant": args.mutant, "results": [dataclasses.asdict(r) for r in results]}
        pathlib.Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        _print(f"wrote {args.json}")
    if args.mutant:
        caught = [r for r in results if r.status == "FAIL"]
        _print(f"mutant {args.mutant}: " + ("caught (not equivalent)" if caught
                                            else "NOT caught"))
        return 0 if caught else 1
    return 0 if results and all(r.status == "PASS" for r in results) else 1
