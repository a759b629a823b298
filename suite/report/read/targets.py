"""Committed targets and each run's time to target, read from the run records.

The step at which a run reached is the first ``eval`` event of its ``metrics.jsonl``
whose target metric is at or beyond the committed value (``>=`` for 'max', ``<=`` for
'min'); ``summary.steps_to_target`` is never read, since the summary may carry a
provisional target. A miss is censored at its last evaluation (:mod:`suite.report.compute.reach`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from suite.record import read_jsonl


@dataclass(frozen=True)
class Target:
    metric: str  # e.g. "val/acc"
    value: float
    direction: str  # "max" | "min"

    def reached(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return value >= self.value if self.direction == "max" else value <= self.value


def read_targets(path: Path) -> dict[str, Target]:
    """``targets.json`` (``{task: {metric, value, direction, ...}}``) as Targets, checked."""
    raw = json.loads(Path(path).read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected {{task: target}}, got {type(raw).__name__}")
    out = {}
    for task, t in raw.items():
        if not isinstance(t, dict) or t.get("direction") not in ("max", "min"):
            raise ValueError(f"{path}: target of {task!r} needs metric, value, direction max|min")
        out[task] = Target(str(t["metric"]), float(t["value"]), t["direction"])
    return out


@dataclass(frozen=True)
class TimeToTarget:
    """One run: the first step at which it reached, or the last evaluated step (censored)."""

    step: int | None  # step of the last evaluation when censored; None when never evaluated
    reached: bool
    seconds: float | None = None  # training seconds at that evaluation (elapsed_s), if recorded


def time_to_target(run_dir: Path, target: Target) -> TimeToTarget:
    """Recompute one run's time to target from its ``metrics.jsonl`` evaluations."""
    last = None
    for event in read_jsonl(Path(run_dir) / "metrics.jsonl"):
        if event.get("event") != "eval" or target.metric not in event:
            continue
        step = int(event["step"])
        value = event[target.metric]
        if isinstance(value, int | float) and target.reached(float(value)):
            elapsed = event.get("elapsed_s")
            return TimeToTarget(
                step, True, float(elapsed) if isinstance(elapsed, int | float) else None
            )
        last = step
    return TimeToTarget(last, False)
