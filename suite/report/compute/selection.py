"""Choosing on val: the one rule by which trials and configurations are ordered.

Nothing here reads ``test/*``: a test corrupts the test metrics and checks that nothing
chosen moves. Two callers, one rule:

- a tuning trial (:func:`suite.tune.objective.rank_key`) is ordered by its objective
  value ``v`` (steps to the val target, else the shortfall; smaller is better), ties broken
  by its best val metric ``m`` oriented so that smaller is better::

      key = (v, -m)  for a max target (accuracy),   key = (v, m)  for a min target (loss)

  (a run with no finite ``m`` sorts last among equal ``v``);
- a configuration of a paper-style experiment (:func:`select_on_val`) is the one with the
  lowest mean val error over its seeds, ``e = 1 - m`` for a max target and ``e = m`` for a
  min target; :func:`at_fresh_seeds` then scores it on runs at seeds the grid did not use.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import pandas as pd

from suite.record import RecordError
from suite.report.read.rows import HP


def oriented(value: float, direction: str) -> float:
    """A val metric oriented so that smaller is better: ``-m`` (max target) or ``m`` (min)."""
    sign = -1.0 if direction == "max" else 1.0
    return sign * value if math.isfinite(value) else math.inf


def trial_key(objective: float, best: float, direction: str) -> tuple[float, float]:
    """Sort key of one tuning trial, smaller is better: (objective value, oriented best val)."""
    return (objective, oriented(best, direction))


def hp_columns(df: pd.DataFrame) -> list[str]:
    """The hyperparameter columns that vary within ``df`` (what a selection chooses among)."""
    cols = [c for c in df.columns if c.startswith(HP) and df[c].notna().any()]
    return [c for c in cols if df[c].astype(str).nunique() > 1]


def val_error(df: pd.DataFrame) -> pd.Series:
    """The task's val target metric as an error to minimise (1 - accuracy, or the loss)."""
    return pd.Series(
        np.where(df["target_direction"] == "max", 1.0 - df["best_target"], df["best_target"]),
        index=df.index,
    )


def select_on_val(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs (all seeds) of the configuration with the lowest mean val error.

    ``runs``: one task and optimizer. Configurations are the distinct values of the
    hyperparameter columns; test metrics are not read (a test corrupts them to check).
    From a tuning study's ``reruns/`` there is one configuration: the protocol chose it
    on val already (:mod:`suite.tune.study`, by :func:`trial_key`)."""
    cols = hp_columns(runs)
    if not cols:
        return runs
    keys = runs[cols].astype(str).agg("|".join, axis=1)
    best = val_error(runs).groupby(keys).mean().idxmin()
    return runs[keys == best]


def at_config(rows: pd.DataFrame, config: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The rows with ``config``'s values (its first row) in every one of ``columns``: numbers
    equal to 1e-12 relative (a value that went through a command line and back), anything
    else as text; none where ``rows`` lack a column."""
    for col in columns:
        if col not in rows:
            return rows.iloc[0:0]
        value = config[col].iloc[0]
        same = (
            np.isclose(rows[col].astype(float), float(value), rtol=1e-12, atol=0.0)
            if isinstance(value, numbers.Real) and not isinstance(value, bool)
            else rows[col].astype(str) == str(value)
        )
        rows = rows[same]
    return rows


Choose = Callable[[pd.DataFrame], pd.DataFrame]  # one optimizer's runs -> the runs that are scored


def at_fresh_seeds(fresh: pd.DataFrame) -> Choose:
    """Choose on val among a grid's runs, score at fresh seeds.

    ``choose(grid)`` is the runs of ``fresh`` (same task and optimizer) at the hyperparameters
    :func:`select_on_val` chooses on ``grid``; none there, or a fresh seed that the grid also
    ran, is a :class:`~suite.record.RecordError` naming the configuration."""

    def choose(grid: pd.DataFrame) -> pd.DataFrame:
        chosen = select_on_val(grid)
        task, opt = grid["task"].iloc[0], grid["optimizer"].iloc[0]
        config = ", ".join(f"{c[len(HP) :]}={chosen[c].iloc[0]}" for c in hp_columns(grid))
        rows = fresh[(fresh["task"] == task) & (fresh["optimizer"] == opt)]
        rows = at_config(rows, chosen, hp_columns(grid))
        if rows.empty:
            raise RecordError(f"no fresh-seed runs of {task} {opt} at {config}")
        if set(rows["seed"]) & set(grid["seed"]):
            raise RecordError(
                f"{task} {opt} at {config}: fresh seeds "
                f"{sorted(set(rows['seed']) & set(grid['seed']))} also ran in the grid that chose"
            )
        return rows

    return choose
