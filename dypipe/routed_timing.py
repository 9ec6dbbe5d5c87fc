"""Every register-to-register path of a routed design, from the SDF file nextpnr writes.

nextpnr reports one critical path per clock and a histogram of slacks; it does not say which
units the failing paths belong to. With ``--sdf FILE`` it writes the routed design's delays
as an SDF file (each packed cell's arcs, each net's delay from its driver to every sink, each
register input's setup time). This module reads that file and redoes nextpnr's own timing
analysis (the ``max`` of each ``min:typ:max`` triple, the clock's arrival as 0, as nextpnr
does): the arrival time at every register input, so that it can list the longest paths
(one for each sequence of units crossed, with their routing and logic time) and count, by
unit, the register inputs that miss a clock period. Its longest path is nextpnr's critical
path; the tests check that on a routed unit.
"""

import collections
import dataclasses
import re

__all__ = ["RoutedPath", "Sdf", "read_sdf", "RoutedTiming", "format_paths"]

_TRIPLE = r"\((-?[\d.]*):(-?[\d.]*):(-?[\d.]*)\)"
_INSTANCE = re.compile(r"\(INSTANCE\s*((?:[^()\\\s]|\\.)*)\s*\)")
_IOPATH = re.compile(r"\(IOPATH\s+(\S+)\s+(\S+)\s+" + _TRIPLE)
_INTERCONNECT = re.compile(r"\(INTERCONNECT\s+(\S+)\s+(\S+)\s+" + _TRIPLE)
_SETUP = re.compile(r"\(SETUP(?:HOLD)?\s+\((?:posedge|negedge)\s+(\S+)\)\s+"
                    r"\((?:posedge|negedge)\s+(\S+)\)\s+" + _TRIPLE)
_TIMESCALE = re.compile(r"\(TIMESCALE\s+(\d+)\s*(ps|ns)\)")
#: A cell port that is a clock: arcs from it start paths (clock to output), never continue them.
_CLOCK_PORT = re.compile(r"^(CLK\w*|WCK)$")


def _unescape(name):
    return re.sub(r"\\(.)", r"\1", name)


def _pin(text):
    """``instance/port`` (the SDF's divider is ``/``; a ``/`` inside a name is escaped)."""
    cut = max(i for i, ch in enumerate(text) if ch == "/" and (i == 0 or text[i - 1] != "\\"))
    return _unescape(text[:cut]), text[cut + 1:]


@dataclasses.dataclass
class Sdf:
    """A routed design's delays, in ns: ``arcs`` from a pin to a pin (``(cell, port)``; a
    cell's own arcs and the nets'), whether each arc is routing, ``sources`` (a register's or
    block RAM's outputs: clock to output) and ``setups`` (register inputs: setup time)."""
    arcs: list
    sources: dict
    setups: dict


def read_sdf(lines):
    """The :class:`Sdf` of an SDF file's ``lines`` (as nextpnr writes it: a delay or a
    timing check is on one line)."""
    scale = 1e-3                                 # nextpnr writes ps
    arcs, sources, setups = [], {}, {}
    cell = None
    for line in lines:
        found = _INTERCONNECT.search(line)
        if found:
            arcs.append((_pin(found[1]), _pin(found[2]), float(found[5]) * scale, True))
            continue
        found = _IOPATH.search(line)
        if found:
            src, dst, ns = found[1], found[2], float(found[5]) * scale
            if _CLOCK_PORT.match(src):
                pin = (cell, dst)
                sources[pin] = max(ns, sources.get(pin, 0.0))
            else:
                arcs.append(((cell, src), (cell, dst), ns, False))
            continue
        found = _SETUP.search(line)
        if found:
            pin = (cell, found[1])
            setups[pin] = max(float(found[5]) * scale, setups.get(pin, 0.0))
            continue
        found = _INSTANCE.search(line)
        if found:
            cell = _unescape(found[1])
            continue
        found = _TIMESCALE.search(line)
        if found:
            scale = int(found[1]) * (1e-3 if found[2] == "ps" else 1.0)
    return Sdf(arcs, sources, setups)


@dataclasses.dataclass
class RoutedPath:
    """One routed path: ``ns`` (clock to output, logic, routing and setup), of which
    ``routing_ns`` in nets, the ``units`` it crosses in order with the number of cells in
    each, and the register output it starts at and the register input it ends at."""
    ns: float
    routing_ns: float
    units: list
    start: str
    end: str


class RoutedTiming:
    """The timing analysis of an :class:`Sdf`, computed once. ``unit_of(cell)`` names the unit
    of a cell (the packed cells' names are those of Yosys's netlist, hierarchy joined by
    dots), or None for a cell nextpnr made (a carry chain's continuation): on a path it
    counts as the unit of the cell before it."""

    def __init__(self, sdf, unit_of):
        self._unit_of = unit_of
        fanout = collections.defaultdict(list)
        pending = collections.Counter()
        for a, b, ns, routing in sdf.arcs:
            fanout[a].append((b, ns, routing))
            pending[b] += 1
        arrival, back = dict(sdf.sources), {}
        order = [p for p in set(arrival) | set(fanout) if pending[p] == 0]
        for p in order:
            for q, ns, routing in fanout[p]:
                if p in arrival:
                    t = arrival[p] + ns
                    if t > arrival.get(q, -1.0):
                        arrival[q], back[q] = t, (p, ns, routing)
                pending[q] -= 1
                if pending[q] == 0:
                    order.append(q)
        self._arrival, self._back = arrival, back
        self._ends = {pin: arrival[pin] + setup for pin, setup in sdf.setups.items()
                      if pin in arrival}

    @property
    def critical_ns(self):
        """The longest path (nextpnr's critical path), ns."""
        return max(self._ends.values(), default=0.0)

    def late_inputs(self, ns):
        """How many register inputs each unit has whose path is longer than ``ns``: a
        :class:`collections.Counter` by the unit of the register."""
        return collections.Counter(self._unit_of(cell) for (cell, _), t in self._ends.items()
                                   if t > ns)

    def longest_paths(self, count=10):
        """The ``count`` longest paths, one for each sequence of units crossed, longest first:
        a list of :class:`RoutedPath`."""
        paths, seen = [], set()
        for end, t in sorted(self._ends.items(), key=lambda item: item[1], reverse=True):
            cells, routing, pin = [end[0]], 0.0, end
            while pin in self._back:
                pin, ns, is_net = self._back[pin]
                if is_net:
                    routing += ns
                if pin[0] != cells[-1]:
                    cells.append(pin[0])
            crossed = []
            for cell in reversed(cells):
                unit = self._unit_of(cell)
                if unit is None:            # a cell nextpnr made: its neighbour's unit
                    unit = crossed[-1][0] if crossed else "nextpnr"
                if crossed and crossed[-1][0] == unit:
                    crossed[-1][1] += 1
                else:
                    crossed.append([unit, 1])
            key = tuple(u for u, _ in crossed)
            if key in seen:
                continue
            seen.add(key)
            paths.append(RoutedPath(round(t, 2), round(routing, 2), crossed,
                                    f"{pin[0]}.{pin[1]}", f"{end[0]}.{end[1]}"))
            if len(paths) == count:
                break
        return paths


def format_paths(paths):
    """Lines for the report: each path's time (routing in it), the units crossed (cells in
    each), where it starts and ends."""
    return [line for p in paths for line in (
        f"  {p.ns:5.1f} ns ({p.routing_ns:4.1f} routing)  "
        + " > ".join(f"{u} ({n})" for u, n in p.units),
        f"            from {p.start}  to {p.end}")]
