"""suite.report.compute.pairwise: paired by seed, misses never counted at the budget, Holm per workload."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from suite.report.compute.pairwise import pairwise


def _frame(steps: dict[str, list[float]], vals: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for opt in steps:
        for seed, (st, v) in enumerate(zip(steps[opt], vals[opt], strict=True)):
            rows.append(
                {
                    "task": "w",
                    "optimizer": opt,
                    "seed": seed,
                    "steps_to_target": st,
                    "best_val": v,
                    "metric": "val/acc",
                    "direction": "max",
                }
            )
    return pd.DataFrame(rows)


def _sign_flip(d) -> float:
    d = np.asarray(d, dtype=float)
    return float(
        stats.permutation_test(
            (d,), np.mean, permutation_type="samples", n_resamples=2 ** len(d)
        ).pvalue
    )


def test_a_miss_is_never_a_hit_at_the_budget():
    inf = math.inf
    # the lm case: [96, 100, miss] vs [96, miss, miss]; censoring made both 98.67
    timed = _frame(
        {"a": [96, 100, inf], "b": [96, inf, inf]},
        {"a": [0.9, 0.91, 0.8], "b": [0.9, 0.85, 0.8]},
    )
    r = pairwise(timed, "a").iloc[0]
    assert (r["reached"], r["n"], r["other_reached"], r["other_n"]) == (2, 3, 1, 3)
    assert r["n_both_reached"] == 1 and math.isnan(r["p_steps"])  # one shared hit: no test
    assert r["fewer_steps"] == ""


def test_paired_effect_and_holm_adjusted_family():
    vals = {
        "cand": [0.90, 0.80, 0.70, 0.60, 0.50, 0.40],
        "b": [0.89, 0.79, 0.69, 0.59, 0.49, 0.39],  # cand better by 0.01 on every seed
        "c": [0.91, 0.79, 0.71, 0.59, 0.51, 0.39],  # mixed
    }
    steps = {k: [10.0] * 6 for k in vals}
    pw = pairwise(_frame(steps, vals), "cand").set_index("other")
    d_b = np.subtract(vals["cand"], vals["b"])
    d_c = np.subtract(vals["cand"], vals["c"])
    assert pw.loc["b", "best_val_diff"] == pytest.approx(0.01)
    assert pw.loc["b", "p_best_val"] == pytest.approx(2 / 64)  # constant d: the floor 2/2^n
    assert pw.loc["c", "p_best_val"] == pytest.approx(_sign_flip(d_c))
    raw = [pw.loc["b", "p_best_val"], pw.loc["c", "p_best_val"]]
    lo, hi = sorted(raw)
    assert pw.loc["b", "p_best_val_holm"] == pytest.approx(min(1, 2 * lo))
    assert pw.loc["c", "p_best_val_holm"] == pytest.approx(max(min(1, 2 * lo), hi))
    # raw p 0.031 < 0.05 but Holm 0.0625 is not: no claim
    assert raw[0] < 0.05 and pw.loc["b", "p_best_val_holm"] > 0.05
    assert pw.loc["b", "better_val"] == "" and d_b.mean() > 0


def test_a_truly_better_candidate_is_claimed():
    vals = {"cand": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], "b": [0.88, 0.79, 0.69, 0.58, 0.49, 0.39]}
    steps = {"cand": [10.0, 11, 12, 13, 14, 15], "b": [20.0, 22, 23, 25, 26, 29]}
    r = pairwise(_frame(steps, vals), "cand").iloc[0]
    assert r["p_best_val_holm"] == pytest.approx(2 / 64) and r["best_val_ci_low"] > 0
    assert r["better_val"] == "cand" and r["fewer_steps"] == "cand" and r["steps_diff"] < 0
