"""Is a difference between two groups of seeds more than noise? Welch's t-test, stated plainly.

Welch's test (``scipy.stats.ttest_ind(equal_var=False)``) does not assume the two
groups share a variance, which optimizers with different stability rarely do.
With fewer than two seeds on either side there is no test, and we say so rather
than rank by a single draw.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from suite.report.collect import HP

ALPHA = 0.05


@dataclass(frozen=True)
class Comparison:
    """Candidate vs baseline on one metric, over seeds."""

    mean_a: float  # candidate
    std_a: float
    n_a: int
    mean_b: float  # baseline
    std_b: float
    n_b: int
    p: float  # NaN when there is no test
    result: str  # "significant" | "not significant" | "n<2, no test" | "no test (...)"

    @property
    def diff(self) -> float:
        return self.mean_a - self.mean_b

    @property
    def significant(self) -> bool:
        return self.result == "significant"


def _ms(x: np.ndarray) -> tuple[float, float]:
    if len(x) == 0:
        return math.nan, math.nan
    return float(np.mean(x)), float(np.std(x, ddof=1)) if len(x) > 1 else math.nan


def welch(candidate: Any, baseline: Any, alpha: float = ALPHA) -> Comparison:
    """Welch's t-test of ``candidate`` seeds against ``baseline`` seeds (arrays of one metric)."""
    a = np.asarray(candidate, dtype=float)
    b = np.asarray(baseline, dtype=float)
    (ma, sa), (mb, sb) = _ms(a), _ms(b)
    p = math.nan
    if len(a) < 2 or len(b) < 2:
        result = "n<2, no test"
    elif not (np.isfinite(a).all() and np.isfinite(b).all()):
        result = "no test (non-finite values)"
    elif np.ptp(a) == 0 and np.ptp(b) == 0:
        result = "no test (no variance in either group)"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
        result = "significant" if p < alpha else "not significant"
    return Comparison(ma, sa, len(a), mb, sb, len(b), p, result)


def _select(df: pd.DataFrame, which: str | Mapping[str, Any], task: str | None) -> pd.DataFrame:
    """Rows of the runs frame for an optimizer name, or {column: value} (hparams by bare name)."""
    spec = {"optimizer": which} if isinstance(which, str) else dict(which)
    if task is not None:
        spec.setdefault("task", task)
    mask = pd.Series(True, index=df.index)
    for key, value in spec.items():
        col = key if key in df.columns or f"{HP}{key}" not in df.columns else f"{HP}{key}"
        if col not in df.columns:
            raise KeyError(f"no column {key!r} in the runs frame")
        mask &= df[col] == value
    return df[mask]


def _fmt(mean: float, std: float, n: int) -> str:
    return f"{mean:.4g} ± {std:.2g} (n={n})" if n > 1 else f"{mean:.4g} (n={n})"


def verdict(
    df: pd.DataFrame,
    baseline: str | Mapping[str, Any],
    candidate: str | Mapping[str, Any],
    metric: str = "best_target",
    task: str | None = None,
    alpha: float = ALPHA,
) -> str:
    """One Markdown sentence comparing two groups of seeds on ``metric``, with Welch's p.

    ``df`` is ``collect(...).runs`` (one row per run). ``baseline``/``candidate`` are an
    optimizer name or a ``{column: value}`` filter (hyperparameters by bare name, e.g.
    ``{"optimizer": "adamw", "lr": 1e-3}``). ``metric`` is a column of ``df``: by default
    ``best_target``, the best value of the task's target metric; also e.g.
    ``final_train_loss`` or ``final.test/acc``.
    """
    if df.empty:
        return "No completed runs: no comparison."
    base, cand = _select(df, baseline, task), _select(df, candidate, task)
    tasks = sorted(set(base["task"]) | set(cand["task"]))
    if len(tasks) > 1:
        raise ValueError(f"the selection spans tasks {tasks}; pass task=...")
    if base.empty or cand.empty:
        empty = "baseline" if base.empty else "candidate"
        return (
            f"No runs match the {empty} {baseline if base.empty else candidate!r}: no comparison."
        )
    name = metric
    if metric in ("best_target", "final_target"):
        name = f"{'best' if metric == 'best_target' else 'final'} {base['target_metric'].iloc[0]}"
    c = welch(cand[metric], base[metric], alpha)
    label_b = baseline if isinstance(baseline, str) else _label(baseline)
    label_c = candidate if isinstance(candidate, str) else _label(candidate)
    head = (
        f"On {tasks[0]}, **{label_c}** has {name} {_fmt(c.mean_a, c.std_a, c.n_a)} "
        f"vs **{label_b}** {_fmt(c.mean_b, c.std_b, c.n_b)}"
    )
    if math.isnan(c.p):
        return f"{head}: {c.result}."
    return (
        f"{head}: difference {c.diff:+.3g}, Welch's t-test p = {c.p:.3g}, {c.result} at {alpha:g}."
    )


def _label(spec: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in spec.items())
