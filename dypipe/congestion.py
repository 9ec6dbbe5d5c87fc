"""Where nextpnr's router2 runs out of wires: its heatmap files, summarised by unit and place.

With ``--router2-heatmap PREFIX`` router2 writes, after each iteration ``N``, among others
``PREFIX_congestion_by_net_N.csv`` (a line ``net,overuse`` for each net: how many of its
wires are shared with another net) and ``PREFIX_congestion_by_coordinate_N.csv`` (a line
for each column ``x`` of the die's tiles, with the overuse of the wires at each ``y``,
comma-separated; only wires used more than once). ``dypipe synth --heatmap`` asks for them
and summarises, for an attempt that did not route, the iteration where router2 had the
fewest overused wires: the overuse by the unit of the net (the net's name is its driver's,
hierarchy joined by dots, as the cells' are) and the square window of the die that holds
the most of it (docs/fpga.md).
"""

import collections
import csv
import pathlib

__all__ = ["WINDOW", "net_overuse", "coordinate_overuse", "hottest_window", "summarize"]

#: The side, in tiles, of the windows :func:`hottest_window` compares.
WINDOW = 16


def net_overuse(lines):
    """``{net: overuse}`` of a ``congestion_by_net`` file's lines (nets without overuse left
    out)."""
    return {row[0]: int(row[1]) for row in csv.reader(lines)
            if len(row) >= 2 and row[1].strip().isdigit() and int(row[1]) > 0}


def coordinate_overuse(lines):
    """A ``congestion_by_coordinate`` file as a list (by ``x``) of lists (by ``y``) of
    counts."""
    return [[int(v) for v in line.strip().split(",") if v.strip()]
            for line in lines if line.strip()]


def hottest_window(grid, size=WINDOW):
    """The ``size`` x ``size`` window (its corner at multiples of ``size``) of ``grid``
    (:func:`coordinate_overuse`) that holds the most overuse: ``(x0, y0, overuse)``, or None
    if there is none."""
    windows = collections.Counter()
    for x, column in enumerate(grid):
        for y, v in enumerate(column):
            if v:
                windows[(x // size * size, y // size * size)] += v
    if not windows:
        return None
    (x0, y0), total = windows.most_common(1)[0]
    return x0, y0, total


def summarize(prefix, iteration, unit_of):
    """The congestion of router2's ``iteration``, from the files that start with ``prefix``
    (a path): ``iteration``, ``overuse`` (the nets' total), ``by_unit`` (``{unit: overuse}``,
    largest first; ``unit_of(net)`` names a net's unit, None counts as ``other``) and
    ``window`` (:func:`hottest_window`'s, with its share of the die's overuse), or None if
    the files are missing."""
    prefix = pathlib.Path(prefix)
    by_net = prefix.parent / f"{prefix.name}_congestion_by_net_{iteration}.csv"
    by_place = prefix.parent / f"{prefix.name}_congestion_by_coordinate_{iteration}.csv"
    if not by_net.exists():
        return None
    with open(by_net) as lines:
        nets = net_overuse(lines)
    units = collections.Counter()
    for net, overuse in nets.items():
        units[unit_of(net) or "other"] += overuse
    summary = {"iteration": iteration, "overuse": sum(nets.values()),
               "by_unit": dict(units.most_common()), "window": None}
    if by_place.exists():
        with open(by_place) as lines:
            grid = coordinate_overuse(lines)
        hot, total = hottest_window(grid), sum(map(sum, grid))
        if hot:
            summary["window"] = {"x": hot[0], "y": hot[1], "size": WINDOW,
                                 "overuse": hot[2], "share": round(hot[2] / total, 3)}
    return summary
