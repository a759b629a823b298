"""Is a val-selected configuration on the edge of the grid it was chosen from?

A grid experiment can only say where the best configuration is if the best cell has a
neighbour on each side along every swept axis. For an axis with sorted values
``v_0 < ... < v_{k-1}`` (``k >= 2``) the selected value ``s`` is on an **open edge** when

    s = v_{k-1}                      (the top: the best may lie above), or
    s = v_0 and v_0 > 0              (the bottom: the best may lie below).

``s = v_0 = 0`` is a **closed** end: nothing lies below zero (no weight decay, no lr), so
it is not an edge. The extension suggested is one more grid step beyond the edge at the
grid's own ratio there: ``v_{k-1} * v_{k-1} / v_{k-2}`` above, ``v_0 * v_0 / v_1`` below
(a factor of 10 where the neighbour is 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from suite.report.read.rows import HP

AXES = ("lr", "weight_decay")  # the axes of an lr x wd grid, in the order they are checked


@dataclass(frozen=True)
class Edge:
    """One selected value on an open edge of its axis, and the grid to extend to."""

    optimizer: str
    axis: str
    value: float
    side: str  # "top" or "bottom"
    grid: tuple[float, ...]
    extended: tuple[float, ...]

    def line(self) -> str:
        """One line: which optimizer, which value, which edge, and what grid to extend to."""
        return (
            f"{self.optimizer}: selected {self.axis} {self.value:g} is the {self.side} edge of "
            f"the {self.axis} grid {_fmt(self.grid)}; extend it to {_fmt(self.extended)}"
        )


def _fmt(values: tuple[float, ...]) -> str:
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


def _step(edge: float, neighbour: float) -> float:
    return edge / neighbour if neighbour > 0 else 10.0


def axis_edge(optimizer: str, axis: str, values: list[float], selected: float) -> Edge | None:
    """The open edge ``selected`` sits on among ``values`` (the axis's grid), else None."""
    grid = tuple(sorted(set(float(v) for v in values)))
    if len(grid) < 2:
        return None
    if selected == grid[-1]:
        above = grid[-1] * _step(grid[-1], grid[-2])
        return Edge(optimizer, axis, selected, "top", grid, (*grid, above))
    if selected == grid[0] and grid[0] > 0:
        below = grid[0] / _step(grid[1], grid[0])
        return Edge(optimizer, axis, selected, "bottom", grid, (below, *grid))
    return None


def grid_edges(runs: pd.DataFrame, selected: pd.DataFrame, optimizer: str) -> list[Edge]:
    """The open edges the selected configuration of ``optimizer`` sits on.

    ``runs``: that optimizer's runs (the grid); ``selected``: the runs of its val-selected
    configuration (:func:`suite.report.compute.selection.select_on_val`). Each axis of
    :data:`AXES` that the runs sweep is checked; one that is not swept has no edge."""
    edges = []
    for axis in AXES:
        col = f"{HP}{axis}"
        if col not in runs or col not in selected or runs[col].isna().all():
            continue
        edge = axis_edge(optimizer, axis, list(runs[col].dropna()), float(selected[col].iloc[0]))
        if edge is not None:
            edges.append(edge)
    return edges
