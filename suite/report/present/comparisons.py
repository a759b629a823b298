"""Each group against the task's 32-bit AdamW baseline, paired by seed (:mod:`suite.report.compute.claims`).

On the best value of the target metric per seed (a val metric: selection and claims never
read test). Runs at the same seed share initialisation and batch order, so the evidence is
the paired difference ``d_i = candidate_i - baseline_i`` (oriented: ``d > 0`` is better).
Family, fixed before the data are read: *every setting vs the AdamW baseline, per task and
step budget*; Holm-adjusted p beside the raw one. "equivalent within margin" only through
TOST at the margin of :func:`suite.report.compute.verdicts.default_margin` (0.005 accuracy,
0.01 nats), else "inconclusive" with the seeds that would decide it.
"""

from __future__ import annotations

import math

import pandas as pd

from suite.report.compute.aggregate import baseline_optimizer
from suite.report.compute.claims import ALPHA, Verdict, family_verdicts
from suite.report.compute.verdicts import default_margin
from suite.report.present.render import Table, hp_label, num, pm, shown_hparams
from suite.report.read.collect import Records


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
    "n_paired",
    "diff",
    "ci_low",
    "ci_high",
    "p",
    "p_holm",
    "margin",
    "p_tost",
    "seeds_needed",
    "result",
]
COMPARISON_SHOWN = [
    "Task",
    "Optimizer",
    "Hyperparameters",
    "Metric",
    "Candidate",
    "Baseline",
    "Paired difference [95 % CI]",
    "p (Holm)",
    "Result",
]


def _by_seed(runs: pd.DataFrame, group: str) -> dict:
    g = runs[runs["group"] == group]
    return {s: float(v) for s, v in zip(g["seed"], g["best_target"], strict=True) if pd.notna(v)}


def _pairs(agg: pd.DataFrame, runs: pd.DataFrame) -> list[tuple[pd.Series, pd.Series]]:
    out = []
    for _, g in agg.iterrows():
        name = baseline_optimizer(runs, g["task"])
        base = _baseline_group(agg, g["task"], name, g["max_steps"]) if name else None
        if base is not None and base["group"] != g["group"]:
            out.append((g, base))
    return out


def _verdicts(pairs, runs: pd.DataFrame, alpha: float) -> dict[str, Verdict]:
    """Verdict per candidate group; Holm within each (task, step budget, baseline) family."""
    families: dict[str, list[tuple[pd.Series, pd.Series]]] = {}
    for g, base in pairs:
        families.setdefault(str(base["group"]), []).append((g, base))
    out: dict[str, Verdict] = {}
    for members in families.values():
        base = members[0][1]
        wl = str(base["task"])
        ref = {wl: _by_seed(runs, base["group"])}
        cands = {str(g["group"]): {wl: _by_seed(runs, g["group"])} for g, _ in members}
        margins = {wl: default_margin(str(base["target_metric"]))}
        directions = {wl: str(base["target_direction"])}
        for group, (v,) in family_verdicts(cands, ref, margins, directions, alpha).items():
            out[group] = v
    return out


def _word(v: Verdict) -> str:
    if v.comparison.n < 2:
        return f"n={v.comparison.n} paired, no test"
    if v.word == "inconclusive":
        more = v.seeds_needed
        return f"inconclusive (about {more} seeds would decide)" if more else "inconclusive"
    return v.word


def comparisons(agg: pd.DataFrame, records: Records, alpha: float = ALPHA) -> Table:
    runs = records.runs
    cols, _ = shown_hparams(agg)
    pairs = _pairs(agg, runs)
    verdicts = _verdicts(pairs, runs, alpha)
    rows, shown = [], []
    for g, base in pairs:
        v = verdicts[str(g["group"])]
        c = v.comparison
        a = runs.loc[runs["group"] == g["group"], "best_target"].dropna()
        b = runs.loc[runs["group"] == base["group"], "best_target"].dropna()
        sa, sb = (float(x.std(ddof=1)) if len(x) > 1 else math.nan for x in (a, b))
        sign = 1.0 if g["target_direction"] == "max" else -1.0  # back to metric units
        diff = sign * c.mean_diff
        lo, hi = sorted((sign * c.ci[0], sign * c.ci[1]))
        result = _word(v)
        rows.append(
            {
                "task": g["task"],
                "optimizer": g["optimizer"],
                "hparams": g["hparams"],
                "max_steps": g["max_steps"],
                "metric": f"best {g['target_metric']}",
                "n": len(a),
                "mean": float(a.mean()) if len(a) else math.nan,
                "std": sa,
                "baseline": base["optimizer"],
                "baseline_hparams": base["hparams"],
                "baseline_n": len(b),
                "baseline_mean": float(b.mean()) if len(b) else math.nan,
                "baseline_std": sb,
                "n_paired": c.n,
                "diff": diff,
                "ci_low": lo,
                "ci_high": hi,
                "p": c.p,
                "p_holm": v.p_holm,
                "margin": v.margin,
                "p_tost": v.p_tost,
                "seeds_needed": v.seeds_needed,
                "result": result,
            }
        )
        ci = f" [{lo:+.3g}, {hi:+.3g}]" if math.isfinite(lo) else ""
        p = f"{c.p:.3g} ({v.p_holm:.3g})" if math.isfinite(c.p) else "-"
        shown.append(
            {
                "Task": g["task"],
                "Optimizer": g["optimizer"],
                "Hyperparameters": hp_label(g, cols),
                "Metric": f"best {g['target_metric']}",
                "Candidate": f"{pm(rows[-1]['mean'], sa)} (n={len(a)})",
                "Baseline": f"{base['optimizer']} [{hp_label(base, cols)}] "
                f"{pm(rows[-1]['baseline_mean'], sb)} (n={len(b)})",
                "Paired difference [95 % CI]": f"{num(diff, '+.3g')}{ci} (n={c.n})",
                "p (Holm)": p,
                "Result": f"{result} (margin ±{v.margin:g})",
            }
        )
    caption = (
        "Each group against the task's 32-bit AdamW baseline (in-house adamw if present, else "
        "torch_adamw; of its hyperparameter settings with the same step budget, the one with the "
        "best mean), on the best value of the target metric per seed, paired by seed. "
        "Difference: candidate - baseline, mean over shared seeds, percentile-bootstrap 95 % "
        "interval; p: exact sign-flip permutation test; Holm over the family 'every setting vs "
        "the baseline, per task and step budget'. Better/worse needs Holm p < "
        f"{alpha:g} and an interval excluding 0; 'equivalent within margin' needs TOST p < "
        f"{alpha:g} at the margin shown (0.005 accuracy, 0.01 nats, stated before the data); "
        "otherwise inconclusive. Fewer than 2 paired seeds: no test."
    )
    data = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    shown_df = pd.DataFrame(shown, columns=COMPARISON_SHOWN)
    return Table("comparisons", "Comparisons with the AdamW baseline", caption, data, shown_df)
