"""Is a difference between two groups of seeds more than noise? One sentence, paired by seed.

Runs with the same seed share initialisation and batch order, so the two groups are
compared on the seeds they share (:func:`suite.report.compute.claims.paired`): the mean
paired difference ``d = candidate - baseline`` with its bootstrap 95 % interval and the
exact sign-flip p. With fewer than two shared seeds there is no test, and we say so rather
than rank by a single draw.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from suite.report.compute.claims import ALPHA, paired
from suite.report.read.rows import HP


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


def _fmt(values: pd.Series) -> str:
    x = values.to_numpy(dtype=float)
    n = len(x)
    return f"{x.mean():.4g} ± {x.std(ddof=1):.2g} (n={n})" if n > 1 else f"{x.mean():.4g} (n={n})"


def verdict(
    df: pd.DataFrame,
    baseline: str | Mapping[str, Any],
    candidate: str | Mapping[str, Any],
    metric: str = "best_target",
    task: str | None = None,
    alpha: float = ALPHA,
) -> str:
    """One Markdown sentence comparing two groups of seeds on ``metric``, paired by seed.

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
    by_seed = {}
    for side, rows in (("candidate", cand), ("baseline", base)):
        if rows["seed"].duplicated().any():
            raise ValueError(f"the {side} selection has several runs per seed; narrow it")
        by_seed[side] = dict(zip(rows["seed"], rows[metric].astype(float), strict=True))
    label_b = baseline if isinstance(baseline, str) else _label(baseline)
    label_c = candidate if isinstance(candidate, str) else _label(candidate)
    head = (
        f"On {tasks[0]}, **{label_c}** has {name} {_fmt(cand[metric])} "
        f"vs **{label_b}** {_fmt(base[metric])}"
    )
    shared = sorted(set(by_seed["candidate"]) & set(by_seed["baseline"]))
    values = [by_seed[s][k] for s in ("candidate", "baseline") for k in shared]
    if len(shared) < 2:
        return f"{head}: {len(shared)} paired seed(s), n<2, no test."
    if not np.isfinite(values).all():
        return f"{head}: no test (non-finite values)."
    c = paired(by_seed["candidate"], by_seed["baseline"], "max")  # d = candidate - baseline
    word = "significant" if c.p < alpha else "not significant"
    return (
        f"{head}: paired by seed (n={c.n}), difference {c.mean_diff:+.3g} "
        f"[{c.ci[0]:+.3g}, {c.ci[1]:+.3g}], sign-flip p = {c.p:.3g}, {word} at {alpha:g}."
    )


def _label(spec: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in spec.items())
