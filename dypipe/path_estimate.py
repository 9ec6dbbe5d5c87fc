"""The longest register-to-register paths of a mapped ECP5 netlist, estimated before placement.

nextpnr names the critical path only once a design has routed, which can take a search for a
placement that routes and a quarter of an hour each; before, the only figure it gives is one
estimated frequency. This module reads Yosys's netlist
(``write_json`` after ``synth_ecp5``, hierarchy kept), flattens it, gives every cell a fixed
delay (:data:`CELL_NS`) and every net from one cell to the next a fixed routing delay
(:data:`NET_NS`), and reports the longest paths from a register (a flip-flop or a block RAM's
output) to a register, with the units they cross. Carry chains (``CCU2C`` carry out to carry
in) and a ``PFUMX`` / ``L6MUX21`` fed by its slice's LUTs cost no routing.

It is an estimate for ranking paths and finding the units they cross, not a timing sign-off:
docs/fpga.md compares it with what nextpnr measured after routing units alone.
"""

import collections
import dataclasses
import re

__all__ = ["CELL_NS", "NET_NS", "SOURCE_NS", "Path", "flatten", "longest_paths", "late_inputs",
           "Timing", "format_paths"]

#: Routing delay from one cell to the next, ns.
NET_NS = 1.3
#: Delay through a combinational cell (any input to any output), ns; unknown cells: ``other``.
CELL_NS = {"LUT4": 0.45, "PFUMX": 0.25, "L6MUX21": 0.25, "CCU2C": 0.5, "CCU2C_carry": 0.06,
           "MULT18X18D": 4.5, "TRELLIS_DPR16X4": 0.8, "other": 0.5}
#: Clock to output of the cells that start paths, ns, and the output ports (a block RAM's is
#: nextpnr's figure for a DP16KD without its output register).
SOURCE_NS = {"TRELLIS_FF": ("Q", 0.5), "DP16KD": ("DO", 5.8)}
#: Cells that end paths (all their inputs but a LUT RAM's read address).
_SEQUENTIAL = ("TRELLIS_FF", "DP16KD", "TRELLIS_DPR16X4")
_MUXES = ("PFUMX", "L6MUX21")


@dataclasses.dataclass
class Path:
    """One estimated path: ``ns``, the ``units`` it crosses in order with the number of cells
    in each (``[["ctrl", 7], ["dispatcher", 18]]``), the register (or block RAM) it starts
    from and the register port it ends at."""
    ns: float
    units: list
    start: str
    end: str


def _base_type(name):
    """A leaf cell's type without Yosys's parameter prefix (``$paramod$...\\TRELLIS_FF``)."""
    return name.rsplit("\\", 1)[-1]


def flatten(netlist, top):
    """The leaf cells of module ``top`` of a Yosys JSON netlist (a dict), hierarchy expanded:
    a list of ``(name, type, {port: (direction, [bits])}, scope)``; ``scope`` is the path of
    instances the cell is in, ``name`` the scope and the cell's own name, each joined by dots
    (a cell's own name may hold dots too); bits are ints (nets) or strings (constants)."""
    modules = netlist["modules"]
    leaves = []
    fresh = [max((b for mod in modules.values() for p in mod.get("ports", {}).values()
                  for b in p["bits"] if isinstance(b, int)), default=0) + 1]

    def expand(module, prefix, bitmap):
        mod = modules[module]

        def outer(bit):
            if not isinstance(bit, int):
                return bit
            if bit not in bitmap:
                bitmap[bit] = fresh[0]
                fresh[0] += 1
            return bitmap[bit]

        for name, cell in mod["cells"].items():
            ctype = cell["type"]
            conns = {p: [outer(b) for b in bits] for p, bits in cell["connections"].items()}
            sub = modules.get(ctype)
            if sub is not None and not sub.get("attributes", {}).get("blackbox"):
                inner = {}
                for port, info in sub["ports"].items():
                    for child, parent in zip(info["bits"], conns.get(port, [])):
                        if isinstance(child, int):
                            inner[child] = parent
                expand(ctype, f"{prefix}{name}.", inner)
            else:
                dirs = cell.get("port_directions", {})
                leaves.append((prefix + name, _base_type(ctype),
                               {p: (dirs.get(p, "input"), bits) for p, bits in conns.items()},
                               prefix.rstrip(".")))

    top_bits = {}
    for info in modules[top]["ports"].values():
        for b in info["bits"]:
            if isinstance(b, int):
                top_bits[b] = b
    expand(top, "", top_bits)
    return leaves


def _arcs(ctype, ports):
    """The combinational arcs of a leaf cell: ``(input port, output port, ns)``."""
    ins = [p for p, (d, _) in ports.items() if d == "input"]
    outs = [p for p, (d, _) in ports.items() if d == "output"]
    if ctype in SOURCE_NS or ctype in ("DCCA", "TRELLIS_IO"):
        return
    for i in ins:
        if ctype == "TRELLIS_DPR16X4" and not i.startswith("RAD"):
            continue
        if ctype == "MULT18X18D" and not re.fullmatch(r"[AB]\d+", i):
            continue
        for o in outs:
            if ctype == "MULT18X18D" and not re.fullmatch(r"P\d+", o):
                continue
            if ctype == "CCU2C" and i == "CIN":
                yield i, o, CELL_NS["CCU2C_carry"] if o == "COUT" else CELL_NS["LUT4"]
            else:
                yield i, o, CELL_NS.get(ctype, CELL_NS["other"])


def _unit_of(scope, design):
    """The unit of a cell in instance ``scope``: the first instance below ``design`` (the
    design's own instance), ``top`` for the design's own cells, ``wrapper`` outside it."""
    if scope == design:
        return "top"
    if not design:
        return scope.split(".")[0]
    if not scope.startswith(design + "."):
        return "wrapper"
    return scope[len(design) + 1:].split(".")[0]


def longest_paths(cells, count=10, design="dut", registered_between_units=False):
    """The ``count`` longest estimated register-to-register paths through ``cells`` (a netlist
    :func:`flatten` ed), one per sequence of units crossed, longest first: a list of
    :class:`Path`. ``design`` is the design's instance in the flattened top (the synthesis
    wrapper's ``dut``; ``""`` for the top itself); cells outside it count as ``wrapper``.

    With ``registered_between_units``, every net from a cell of one unit of the design to a
    cell of another is taken to pass a register (a path ends there, its port named
    ``boundary``, and another starts): what the longest path would be if every unit's
    interface were registered, a cycle more on each."""
    return Timing(cells, design, registered_between_units).longest_paths(count)


def late_inputs(cells, ns, design="dut"):
    """How many register inputs (flip-flop and block RAM input bits) each unit has whose
    estimated path is longer than ``ns``: a count of what stands between the design and a
    clock period of ``ns``, where :func:`longest_paths` names only the worst. A
    :class:`collections.Counter` by the unit of the register."""
    return Timing(cells, design).late_inputs(ns)


class Timing:
    """The estimate of ``cells`` (arguments as for :func:`longest_paths`), computed once, for
    both :meth:`longest_paths` and :meth:`late_inputs`."""

    def __init__(self, cells, design="dut", registered_between_units=False):
        self._cells = cells
        self._units, self._arrival, self._back, self._ends = _arrivals(
            cells, design, registered_between_units)

    def longest_paths(self, count=10):
        """:func:`longest_paths`."""
        cells, units, arrival, back = self._cells, self._units, self._arrival, self._back
        paths, seen = [], set()
        for t, b, k, port in sorted(((arrival.get(b, 0.0) + NET_NS, b, k, port)
                                     for b, k, port in self._ends), reverse=True):
            chain, x = [], b
            while x in back:
                x, cell = back[x]
                chain.append(cell)
                if x is None:
                    break
            if not chain:               # an input pin's, or an undriven bit
                continue
            crossed = []
            for cell in reversed(chain):
                if crossed and crossed[-1][0] == units[cell]:
                    crossed[-1][1] += 1
                else:
                    crossed.append([units[cell], 1])
            key = tuple(u for u, _ in crossed)
            if key in seen:
                continue
            seen.add(key)
            paths.append(Path(t, crossed, cells[chain[-1]][0], f"{cells[k][0]}.{port}"))
            if len(paths) == count:
                break
        return paths

    def late_inputs(self, ns):
        """:func:`late_inputs`."""
        return collections.Counter(self._units[k] for b, k, _ in self._ends
                                   if b in self._back
                                   and self._arrival.get(b, 0.0) + NET_NS > ns)


def _arrivals(cells, design, registered_between_units):
    """The estimate itself: each cell's unit, each bit's arrival time and the arc it came
    through (``(bit before, cell)``, ``(None, cell)`` at a register), and the register inputs
    that end paths (``(bit, cell, port)``)."""
    units = [_unit_of(scope, design) for _, _, _, scope in cells]
    driver = {}                                    # bit -> (cell index, output port)
    fanout = collections.defaultdict(list)         # bit -> [(out bit, ns, cell index)]
    pending = collections.Counter()                # bit -> arcs into it not yet resolved
    arrival, back = {}, {}
    ends = []                                      # (bit, cell index, port)
    for k, (name, ctype, ports, _) in enumerate(cells):
        for port, (direction, bits) in ports.items():
            for b in bits:
                if not isinstance(b, int):
                    continue
                if direction == "output":
                    driver[b] = (k, port)
                elif ctype in _SEQUENTIAL and not port.startswith("RAD") \
                        and port not in ("CLK", "CLKA", "CLKB", "WCK"):
                    ends.append((b, k, port))
        for i, o, ns in _arcs(ctype, ports):
            for ib in ports[i][1]:
                if isinstance(ib, int):
                    for ob in ports[o][1]:
                        if isinstance(ob, int):
                            fanout[ib].append((ob, ns, k))
                            pending[ob] += 1
        if ctype in SOURCE_NS:
            port, ns = SOURCE_NS[ctype]
            for p, (direction, bits) in ports.items():
                if direction == "output" and p.startswith(port):
                    for b in bits:
                        if isinstance(b, int):
                            arrival[b], back[b] = ns, (None, k)
    # Longest arrival times, in topological order of the bits (Kahn).
    order = [b for b in set(arrival) | set(fanout) if pending[b] == 0]
    for b in order:
        arrival.setdefault(b, 0.0)
    for b in order:
        src = driver.get(b)
        for ob, ns, k in fanout[b]:
            ctype = cells[k][1]
            if src is None:
                hop = NET_NS
            elif src[1] == "COUT" and ctype == "CCU2C":
                hop = 0.0
            elif ctype in _MUXES and cells[src[0]][1] in ("LUT4", *_MUXES):
                hop = 0.1
            else:
                hop = NET_NS
            if registered_between_units and src is not None \
                    and units[src[0]] != units[k] and "wrapper" not in (units[src[0]], units[k]):
                ends.append((b, src[0], "boundary"))
                t, via = SOURCE_NS["TRELLIS_FF"][1] + hop + ns, (None, k)
            else:
                t, via = arrival[b] + hop + ns, (b, k)
            if t > arrival.get(ob, -1.0):
                arrival[ob], back[ob] = t, via
            pending[ob] -= 1
            if pending[ob] == 0:
                order.append(ob)
    return units, arrival, back, ends


def format_paths(paths):
    """Lines for the report: the estimate and the units crossed (cells in each), then where
    the path starts and ends."""
    return [line for p in paths for line in (
        f"  {p.ns:5.1f} ns  " + " > ".join(f"{u} ({n})" for u, n in p.units),
        f"            from {p.start}  to {p.end}")]
