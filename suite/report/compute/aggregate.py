"""Runs -> groups: one row per task x optimizer x step budget x hyperparameter setting,
its seeds aggregated as mean, std (ddof=1) and n."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from suite.report.read.collect import Records
from suite.report.read.rows import HP

BASELINES = ("adamw", "torch_adamw")  # the 32-bit AdamW baseline, in order of preference


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample std; NaN propagates (a NaN seed is shown, never skipped)."""
    if len(values) == 0:
        return math.nan, math.nan
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return float(np.mean(values)), std


AGG_COLUMNS = (
    "final_train_loss",
    "final_target",
    "best_target",
    "final_train",
    "final_test",
    "gap",
    "tensor_bytes",
    "state_bytes_per_param",
    "peak_memory_bytes",
    "median_step_time_s",
    "wall_seconds",
)


def aggregate(records: Records) -> pd.DataFrame:
    """One row per group: mean/std over seeds of every AGG_COLUMNS entry, n, targets reached."""
    runs = records.runs
    if runs.empty:
        return pd.DataFrame()
    hp_cols = [c for c in runs.columns if c.startswith(HP)]
    excluded = (
        Counter(records.problems["group"].dropna()) if not records.problems.empty else Counter()
    )
    out = []
    for key, g in runs.groupby("group", sort=False):
        first = g.iloc[0]
        row: dict[str, Any] = {
            c: first[c]
            for c in (
                "task",
                "optimizer",
                "impl",
                "family",
                "state_bits",
                "max_steps",
                "hparams",
                "group",
            )
        }
        row.update(
            {
                c: first[c]
                for c in ("target_metric", "target_value", "target_direction", "test_metric")
            }
        )
        row.update({c: first[c] for c in hp_cols})
        row["peak_memory_kind"] = "/".join(sorted(set(g["peak_memory_kind"])))
        row["n"] = len(g)
        row["seeds"] = ",".join(str(s) for s in g["seed"])
        row["excluded"] = excluded.get(key, 0)
        for col in AGG_COLUMNS:
            row[f"{col}_mean"], row[f"{col}_std"] = _mean_std(g[col].to_numpy(float))
        hit = g[g["reached"]]
        row["reached"] = len(hit)
        for col in ("steps_to_target", "seconds_to_target"):
            row[f"{col}_mean"], row[f"{col}_std"] = _mean_std(hit[col].to_numpy(float))
        out.append(row)
    agg = pd.DataFrame(out)
    hp_sort = [c for c in hp_cols if agg[c].map(lambda v: isinstance(v, (int, float))).all()]
    return agg.sort_values(
        ["task", "optimizer", "max_steps", *hp_sort, "hparams"], kind="stable"
    ).reset_index(drop=True)


def baseline_optimizer(runs: pd.DataFrame, task: str) -> str | None:
    """The 32-bit AdamW entry run on ``task``: in-house ``adamw`` first, else ``torch_adamw``."""
    present = set(runs.loc[runs["task"] == task, "optimizer"]) if not runs.empty else set()
    return next((name for name in BASELINES if name in present), None)
