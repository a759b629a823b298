"""Each group against the task's 32-bit AdamW baseline: Welch's t-test on the best target
metric per seed (the target is a val metric: selection and claims never read test)."""

from __future__ import annotations

import math

import pandas as pd

from suite.report.aggregate import baseline_optimizer
from suite.report.collect import Records
from suite.report.render import Table, hp_label, num, pm, shown_hparams
from suite.report.stats import ALPHA, welch


def _baseline_group(agg: pd.DataFrame, task: str, name: str, max_steps: float) -> pd.Series | None:
    cands = agg[(agg["task"] == task) & (agg["optimizer"] == name)]
    same = cands[cands["max_steps"] == max_steps]
    cands = same if len(same) else cands
    if cands.empty:
        return None
    higher = cands["target_direction"].iloc[0] == "max"
    order = cands["best_target_mean"].fillna(-math.inf if higher else math.inf)
    return cands.loc[order.idxmax() if higher else order.idxmin()]


COMPARISON_COLUMNS = [
    "task",
    "optimizer",
    "hparams",
    "max_steps",
    "metric",
    "n",
    "mean",
    "std",
    "baseline",
    "baseline_hparams",
    "baseline_n",
    "baseline_mean",
    "baseline_std",
    "diff",
    "p",
    "significant",
    "result",
]
COMPARISON_SHOWN = [
    "Task",
    "Optimizer",
    "Hyperparameters",
    "Metric",
    "Candidate",
    "Baseline",
    "Difference",
    "p",
    "Result",
]


def comparisons(agg: pd.DataFrame, records: Records, alpha: float = ALPHA) -> Table:
    runs = records.runs
    cols, _ = shown_hparams(agg)
    rows, shown = [], []
    for _, g in agg.iterrows():
        name = baseline_optimizer(runs, g["task"])
        base = _baseline_group(agg, g["task"], name, g["max_steps"]) if name else None
        if base is None or base["group"] == g["group"]:
            continue
        a = runs.loc[runs["group"] == g["group"], "best_target"]
        b = runs.loc[runs["group"] == base["group"], "best_target"]
        c = welch(a, b, alpha)
        rows.append(
            {
                "task": g["task"],
                "optimizer": g["optimizer"],
                "hparams": g["hparams"],
                "max_steps": g["max_steps"],
                "metric": f"best {g['target_metric']}",
                "n": c.n_a,
                "mean": c.mean_a,
                "std": c.std_a,
                "baseline": base["optimizer"],
                "baseline_hparams": base["hparams"],
                "baseline_n": c.n_b,
                "baseline_mean": c.mean_b,
                "baseline_std": c.std_b,
                "diff": c.diff,
                "p": c.p,
                "significant": c.significant,
                "result": c.result,
            }
        )
        shown.append(
            {
                "Task": g["task"],
                "Optimizer": g["optimizer"],
                "Hyperparameters": hp_label(g, cols),
                "Metric": f"best {g['target_metric']}",
                "Candidate": f"{pm(c.mean_a, c.std_a)} (n={c.n_a})",
                "Baseline": f"{base['optimizer']} [{hp_label(base, cols)}] "
                f"{pm(c.mean_b, c.std_b)} (n={c.n_b})",
                "Difference": num(c.diff, "+.3g"),
                "p": num(c.p, ".3g") if not math.isnan(c.p) else "-",
                "Result": c.result,
            }
        )
    caption = (
        "Each group against the task's 32-bit AdamW baseline (in-house adamw if present, else "
        "torch_adamw; of its hyperparameter settings with the same step budget, the one with the "
        "best mean), on the best value of the target metric per seed. Welch's t-test; significant "
        f"at p < {alpha:g}. With fewer than 2 seeds on either side there is no test."
    )
    data = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    shown_df = pd.DataFrame(shown, columns=COMPARISON_SHOWN)
    return Table("comparisons", "Comparisons with the AdamW baseline", caption, data, shown_df)
