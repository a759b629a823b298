"""What a trial scored: time to the task's val target, else how close it came.

Read from the trial's own ``summary.json`` (its ``target`` names the metric, e.g.
``val/acc``), never from ``test/*``. The order, best first:

1. runs that reached the target, by steps to target (then by best val metric);
2. runs that did not, by their best val metric;
3. diverged or failed runs.

As one number for Optuna (minimised)::

    reached:      v = steps_to_target / max_steps                       in (0, 1]
    not reached:  v = 1 + shortfall,  shortfall = (t - m) / max(|t|, 1e-12) for a max target
                                                  (m - t) / max(|t|, 1e-12) for a min target
    otherwise:    v = inf

with t the target value and m the run's best value of the target metric over its
evaluations. :func:`rank_key` breaks ties between equal v (evaluations are periodic,
so several trials can reach the target at the same step) by the best metric.

A trial run before a target was committed carries a provisional target in its summary;
:func:`against_target` rescores it against the committed one (``targets.json``) from its
own ``metrics.jsonl`` evaluations, so a selection never depends on a stale summary target.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from suite.record import read_jsonl
from suite.report.compute.selection import trial_key

VAL = "val/"  # the split selection reads; nothing here reads "test/"


def best_metric(summary: dict) -> float:
    """The run's best value of its target metric, NaN where there is none."""
    metric = summary["target"]["metric"]
    value = (summary.get("best") or {}).get(metric)
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def reached(summary: dict) -> bool:
    return summary.get("status") == "ok" and summary.get("steps_to_target") is not None


def objective_value(summary: dict) -> float:
    """The number Optuna minimises for this trial (see the module docstring)."""
    if summary.get("status") != "ok":
        return math.inf
    if reached(summary):
        return float(summary["steps_to_target"]) / float(summary["max_steps"])
    t = float(summary["target"]["value"])
    m = best_metric(summary)
    if not math.isfinite(m):
        return math.inf
    sign = 1.0 if summary["target"]["direction"] == "max" else -1.0
    return 1.0 + max(0.0, sign * (t - m)) / max(abs(t), 1e-12)


def rank_key(summary: dict) -> tuple[Any, ...]:
    """Sort key, smaller is better: (objective value, best metric oriented so lower is better),
    by the one rule of choosing on val (:func:`suite.report.compute.selection.trial_key`)."""
    direction = summary["target"]["direction"]
    return trial_key(objective_value(summary), best_metric(summary), direction)


def against_target(summary: dict, run_dir: Path, target: dict) -> dict:
    """A copy of ``summary`` scored against the committed ``target`` ({metric, value, direction}).

    ``target``, ``steps_to_target`` and ``best[metric]`` are recomputed from the run's eval
    events: the first evaluation at or beyond the value, and the best value over evaluations.
    """
    metric, value, direction = target["metric"], float(target["value"]), target["direction"]
    if direction not in ("max", "min"):
        raise ValueError(f"target direction {direction!r}: expected 'max' or 'min'")
    if not metric.startswith(VAL):
        raise ValueError(f"target metric {metric!r}: selection reads only {VAL}* metrics")
    vals = [
        (int(e["step"]), float(e[metric]))
        for e in read_jsonl(Path(run_dir) / "metrics.jsonl")
        if e.get("event") == "eval" and isinstance(e.get(metric), int | float)
    ]
    vals = [(s, v) for s, v in vals if math.isfinite(v)]
    hit = (lambda v: v >= value) if direction == "max" else (lambda v: v <= value)
    best = (max if direction == "max" else min)((v for _, v in vals), default=None)
    out = dict(summary)
    out["target"] = {"metric": metric, "value": value, "direction": direction}
    out["steps_to_target"] = next((s for s, v in vals if hit(v)), None)
    out["best"] = {**(summary.get("best") or {}), metric: best}
    return out
