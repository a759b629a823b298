"""Is A better than B on a workload? Paired by seed, Holm within the family, misses never hits.

Family, fixed before the data are read: *the candidate against each other optimizer, per
workload* (Holm's adjustment over the others on that workload).

* Reach: ``k/n`` seeds that met the target, each side; a miss is never counted at the
  budget. Steps to target are compared only on the seeds where *both* reached, as paired
  differences (exact sign-flip test, :func:`suite.report.compute.claims.paired`); with fewer than
  2 such seeds there is no test.
* Best val metric per seed: paired difference ``d`` oriented so that ``d > 0`` means the
  candidate is better, mean with a percentile-bootstrap 95 % interval, sign-flip p, Holm p.

A claim ("fewer steps", "better val") is made only where the Holm-adjusted p is below
``alpha`` and the interval excludes 0.
"""

from __future__ import annotations

import math

import pandas as pd

from suite.report.compute.claims import ALPHA, holm, paired


def _by_seed(g: pd.DataFrame, column: str) -> dict:
    return {s: float(v) for s, v in zip(g["seed"], g[column], strict=True)}


def _row(task: str, candidate: str, other: str, a: pd.DataFrame, b: pd.DataFrame) -> dict:
    steps_a, steps_b = _by_seed(a, "steps_to_target"), _by_seed(b, "steps_to_target")
    both = {s for s in set(steps_a) & set(steps_b) if math.isfinite(steps_a[s] + steps_b[s])}
    cs = paired({s: steps_a[s] for s in both}, {s: steps_b[s] for s in both}, "min")
    direction = a["direction"].iloc[0]
    va = {s: v for s, v in _by_seed(a, "best_val").items() if math.isfinite(v)}
    vb = {s: v for s, v in _by_seed(b, "best_val").items() if math.isfinite(v)}
    cm = paired(va, vb, direction)
    sign = 1.0 if direction == "max" else -1.0
    lo, hi = sorted((sign * cm.ci[0], sign * cm.ci[1]))
    reached = int(sum(math.isfinite(v) for v in steps_a.values()))
    other_reached = int(sum(math.isfinite(v) for v in steps_b.values()))
    return {
        "task": task,
        "candidate": candidate,
        "other": other,
        "n": len(steps_a),
        "other_n": len(steps_b),
        "reached": reached,
        "other_reached": other_reached,
        "n_both_reached": cs.n,
        "steps_diff": -cs.mean_diff,  # candidate - other, in steps (negative: fewer)
        "steps_ci_low": -cs.ci[1],
        "steps_ci_high": -cs.ci[0],
        "p_steps": cs.p,
        "metric": a["metric"].iloc[0],
        "n_paired": cm.n,
        "best_val_mean": float(pd.Series(list(va.values())).mean()),
        "other_best_val_mean": float(pd.Series(list(vb.values())).mean()),
        "best_val_diff": sign * cm.mean_diff,  # candidate - other, in metric units
        "best_val_ci_low": lo,
        "best_val_ci_high": hi,
        "p_best_val": cm.p,
        "_better_steps": cs.mean_diff > 0 and (cs.ci[0] > 0),
        "_worse_steps": cs.mean_diff < 0 and (cs.ci[1] < 0),
        "_better_val": cm.mean_diff > 0 and (cm.ci[0] > 0),
        "_worse_val": cm.mean_diff < 0 and (cm.ci[1] < 0),
    }


def pairwise(timed: pd.DataFrame, candidate: str, alpha: float = ALPHA) -> pd.DataFrame:
    """``candidate`` against every other optimizer on every workload; one row per pair."""
    rows = []
    for task, g in timed.groupby("task", sort=True):
        a = g[g["optimizer"] == candidate]
        if a.empty:
            continue
        fam = [
            _row(str(task), candidate, str(other), a, b)
            for other, b in g[g["optimizer"] != candidate].groupby("optimizer", sort=True)
        ]
        for key in ("p_steps", "p_best_val"):
            for r, p in zip(fam, holm([r[key] for r in fam]), strict=True):
                r[f"{key}_holm"] = p
        for r in fam:
            steps_ok = r["p_steps_holm"] < alpha
            val_ok = r["p_best_val_holm"] < alpha
            r["fewer_steps"] = (
                candidate
                if steps_ok and r.pop("_better_steps")
                else (r["other"] if steps_ok and r.pop("_worse_steps") else "")
            )
            r["better_val"] = (
                candidate
                if val_ok and r.pop("_better_val")
                else (r["other"] if val_ok and r.pop("_worse_val") else "")
            )
            for k in [k for k in r if k.startswith("_")]:
                del r[k]
        rows += fam
    return pd.DataFrame(rows)
