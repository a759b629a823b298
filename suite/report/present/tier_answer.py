"""The tier's answer (issue 20): per workload, each optimizer against the reference on the
test metric at its val-chosen configuration.

* generalization: test metric at the last evaluation of the scored runs (the configuration
  was chosen on val; nothing reads test to choose), train - test gap, and the paired verdict
  against the reference on it (:mod:`suite.report.compute.claims`: Holm over the optimizers per
  workload, TOST at the stated margin, else inconclusive with the seeds that would decide).
* by optimizer: the same verdicts, one row per optimizer and one column per workload, with
  how many workloads each is better, equivalent or worse on: the answer read across kinds.
* answer: those verdicts gathered per model kind into better / equivalent / worse /
  inconclusive, each with its paired difference and interval; an optimizer with a run that has
  no test value (a diverged run has no final model) is named under "Not compared", never
  dropped.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from suite.report.compute.claims import family_verdicts
from suite.report.compute.verdicts import default_margin
from suite.report.read.tier_records import Tier


def _test_metric(tier: Tier, task: str) -> tuple[str, str]:
    metric = tier.workloads[task].target.metric  # "val/acc" -> "test/acc"
    return "test/" + metric.split("/", 1)[1], "train/" + metric.split("/", 1)[1]


def _test_values(tier: Tier, task: str) -> dict[str, dict[int, float]]:
    """{optimizer: {seed: test metric at its last evaluation}} of the scored runs; nan for a
    run that did not finish ok (a diverged run has no final model: its evaluations before
    the divergence are not its result)."""
    test_key, _ = _test_metric(tier, task)
    return {
        opt: {
            r.seed: float(tier.finals[task, opt, r.seed].get(test_key, math.nan))
            if r.status == "ok"
            else math.nan
            for r in tier.scored(task, opt)
        }
        for opt in tier.optimizers
    }


def _not_compared(tier: Tier, task: str, opt: str, values: dict[int, float]) -> str:
    """Why ``opt`` has runs without a test value: ``4 diverged of 10 runs``."""
    test_key, _ = _test_metric(tier, task)
    why = Counter(
        r.status if r.status != "ok" else f"without a {test_key}"
        for r in tier.scored(task, opt)
        if not math.isfinite(values[r.seed])
    )
    return f"{', '.join(f'{n} {w}' for w, n in why.items())} of {len(values)} runs"


def test_verdicts(tier: Tier, task: str, values: dict[str, dict[int, float]]) -> dict[str, object]:
    """Each optimizer's paired verdict against the reference on the test metric
    (``values``: :func:`_test_values`; :func:`suite.report.compute.claims.family_verdicts`,
    Holm over this workload's optimizers); one without a finite test value at every seed is
    left out."""
    test_key, _ = _test_metric(tier, task)
    others = {
        o: {task: v}
        for o, v in values.items()
        if o != tier.reference and all(map(math.isfinite, v.values()))
    }
    direction = tier.workloads[task].target.direction
    verdicts = family_verdicts(
        others, {task: values[tier.reference]}, {task: default_margin(test_key)}, {task: direction}
    )
    return {opt: v[0] for opt, v in verdicts.items()}


def _interval(v) -> str:
    c = v.comparison
    return f"{c.mean_diff:+.4f} [{c.ci[0]:+.4f}, {c.ci[1]:+.4f}]"


ANSWER_COLUMNS = {
    "better": "Better",
    "equivalent within margin": "Equivalent (TOST)",
    "worse": "Worse",
    "inconclusive": "Inconclusive",
}


def answer(tier: Tier) -> pd.DataFrame:
    """Per model kind and workload: which optimizers are better than the reference, equivalent
    to it, worse, or undecided, on the test metric at the val-chosen configuration, each with
    its paired difference and 95 % interval (the generalization tables' verdicts, gathered;
    differences oriented so that + is better, loss or accuracy alike), best first. An
    optimizer with a run that has no test value (it diverged, or its evaluations hold none)
    is named under "Not compared" with how many and why, never dropped."""
    rows = []
    for task, w in sorted(tier.workloads.items(), key=lambda kv: (kv[1].kind, kv[0])):
        test_key, _ = _test_metric(tier, task)
        cells: dict[str, list[str]] = {word: [] for word in ANSWER_COLUMNS}
        values = _test_values(tier, task)
        verdicts = test_verdicts(tier, task, values)
        for opt, v in sorted(verdicts.items(), key=lambda kv: -kv[1].comparison.mean_diff):
            word = v.word if v.word in ANSWER_COLUMNS else "inconclusive"  # "no data"
            cells[word].append(f"{opt} {_interval(v)}" if v.word != "no data" else opt)
        row = {
            "Kind": w.kind,
            "Workload": task,
            "Metric": f"{test_key} (±{default_margin(test_key):g})",
        }
        row.update({col: "; ".join(cells[word]) or "-" for word, col in ANSWER_COLUMNS.items()})
        left_out = [
            f"{opt} ({_not_compared(tier, task, opt, v)})"
            for opt, v in values.items()
            if opt != tier.reference and opt not in verdicts
        ]
        row["Not compared"] = "; ".join(left_out) or "-"
        rows.append(row)
    return pd.DataFrame(rows)


def by_optimizer(tier: Tier) -> pd.DataFrame:
    """One row per optimizer (not the reference), one column per workload (by model kind):
    the verdict against the reference on the test metric and its paired mean difference (+ is
    better), as in :func:`answer`; "not compared" with why for an optimizer with a run without
    a test value. The last column counts the workloads it is better, equivalent or worse on."""
    tasks = sorted(tier.workloads, key=lambda t: (tier.workloads[t].kind, t))
    cells: dict[str, dict[str, str]] = {o: {} for o in tier.optimizers if o != tier.reference}
    words: dict[str, list[str]] = {o: [] for o in cells}
    for task in tasks:
        values = _test_values(tier, task)
        verdicts = test_verdicts(tier, task, values)
        column = f"{tier.workloads[task].kind}: {task}"
        for opt in cells:
            if opt not in verdicts:
                cells[opt][column] = f"not compared ({_not_compared(tier, task, opt, values[opt])})"
                continue
            v = verdicts[opt]
            word = "equivalent" if v.word == "equivalent within margin" else v.word
            words[opt].append(word)
            cells[opt][column] = (
                word if v.word == "no data" else f"{word} {v.comparison.mean_diff:+.4f}"
            )
    rows = []
    for opt, row in cells.items():
        n = {w: words[opt].count(w) for w in ("better", "equivalent", "worse")}
        rows.append(
            {
                "Optimizer": opt,
                **row,
                "Better / equivalent / worse on": f"{n['better']} / {n['equivalent']} / "
                f"{n['worse']} of {len(tasks)}",
            }
        )
    return pd.DataFrame(rows)


def generalization(tier: Tier, task: str) -> pd.DataFrame:
    test_key, train_key = _test_metric(tier, task)
    margin = default_margin(test_key)
    values = _test_values(tier, task)
    verdicts = test_verdicts(tier, task, values)
    rows = []
    for opt in tier.optimizers:
        finite = [v for v in values[opt].values() if math.isfinite(v)]
        gaps = [
            float(tier.finals[task, opt, s].get(train_key, math.nan)) - v
            for s, v in values[opt].items()
        ]
        if opt == tier.reference:
            verdict = "reference"
        elif opt in verdicts:
            v = verdicts[opt]
            verdict = (
                f"{v.word}: {_interval(v)}, "
                f"Holm p={v.p_holm:.3g}, TOST p={v.p_tost:.3g} at ±{margin:g}"
            )
            if v.word == "inconclusive" and v.seeds_needed:
                verdict += f"; ~{v.seeds_needed} seeds would decide"
        else:
            verdict = f"not compared: {_not_compared(tier, task, opt, values[opt])}"
        rows.append(
            {
                "Optimizer": opt,
                f"{test_key} (median)": f"{np.median(finite):.4f}" if finite else "-",
                "train - test (median)": f"{np.nanmedian(gaps):+.4f}" if finite else "-",
                f"vs {tier.reference} (paired by seed)": verdict,
            }
        )
    return pd.DataFrame(rows)
