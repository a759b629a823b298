"""The tier's tables (issue 20), each a DataFrame computed from a complete :class:`Tier`.

* leaderboard: AlgoPerf's integrated performance-profile score on steps to the committed
  val target, with a seed-bootstrap 95 % interval, the rank range the intervals allow and
  P(rank 1) (:mod:`suite.report.compute.leaderboard`); overall and per model kind.
* convergence: reach k/n with its exact interval, steps among the runs that reached, the
  Kaplan-Meier median (:mod:`suite.report.compute.reach`: a miss is never a hit at the budget), and
  the median step time (indicative: campaign runs are not interleaved).
* generalization: test metric at the last evaluation of the scored runs (the configuration
  was chosen on val; nothing reads test to choose), train - test gap, and the paired verdict
  against the reference on it (:mod:`suite.report.compute.claims`: Holm over the optimizers per
  workload, TOST at the stated margin, else inconclusive with the seeds that would decide).
* memory: optimizer state bytes per parameter, params + grads + state, peak RSS above the
  process's baseline.
* tuning: study-to-study spread of each study's best (AlgoPerf: median over studies),
  Dodge et al.'s expected best after 1, 4 and all trials, the share of trials within the
  margin of the best, and the divergence rate (:mod:`suite.report.compute.tuning_curves`).

Entries whose scored runs are identical metric for metric are marked ``= <entry>``
(:func:`suite.report.read.scored.identical_groups`), never counted as confirmations.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from suite.report.compute.claims import family_verdicts
from suite.report.compute.leaderboard import Board, leaderboard
from suite.report.compute.reach import reach
from suite.report.compute.tuning_curves import expected_best, sensitivity
from suite.report.compute.verdicts import default_margin
from suite.report.read.scored import identical_groups
from suite.report.read.targets import TimeToTarget
from suite.report.read.tier_records import Tier


def board(tier: Tier, tasks: list[str], n_boot: int = 2000) -> Board:
    """The leaderboard over ``tasks`` (steps to target of the scored reruns)."""
    times = {o: {} for o in tier.optimizers}
    for r in tier.runs:
        if r.task in tasks:
            times[r.optimizer].setdefault(r.task, {})[r.seed] = r.ttt
    return leaderboard(times, n_boot=n_boot)


def study_board(tier: Tier, tasks: list[str], n_boot: int = 2000) -> Board:
    """AlgoPerf's external-tuning score: per study, the time to target of its best trial
    (fewest steps among those that reached; a study none of whose trials reached is a
    miss), the median over studies, and an interval from resampling the studies. It holds
    tuning luck, which the rerun board (one pooled pick) cannot; the pick and its time
    come from the same run, so its times are optimistic, as AlgoPerf's are."""
    times: dict[str, dict[str, dict[int, TimeToTarget]]] = {o: {} for o in tier.optimizers}
    for t in tier.trials:
        if t.task not in tasks:
            continue
        per = times[t.optimizer].setdefault(t.task, {})
        held = per.get(t.study)
        if held is None or _faster(t.ttt, held):
            per[t.study] = t.ttt
    return leaderboard(times, n_boot=n_boot)


def _faster(a: TimeToTarget, b: TimeToTarget) -> bool:
    if a.reached != b.reached:
        return a.reached
    return a.reached and (a.step or 0) < (b.step or 0)


def leaderboard_table(b: Board, same: dict[str, str]) -> pd.DataFrame:
    t = b.table
    return pd.DataFrame(
        {
            "Optimizer": [o + (f" (= {same[o]})" if o in same else "") for o in t.index],
            "Score [95 % CI]": [
                f"{t.loc[o, 'score']:.3f} [{t.loc[o, 'low']:.3f}, {t.loc[o, 'high']:.3f}]"
                for o in t.index
            ],
            "Rank": t["rank"].tolist(),
            "P(rank 1)": [f"{b.rank_probability.loc[o, 1]:.2f}" for o in t.index],
        }
    )


def same_math(tier: Tier) -> dict[str, str]:
    """Entries identical to another on every workload (``{entry: the one shown}``)."""
    per_task = [identical_groups(tier.runs, t) for t in tier.workloads]
    return {
        o: first for o, first in per_task[0].items() if all(g.get(o) == first for g in per_task)
    }


def _runs(tier: Tier, task: str, opt: str) -> list:
    return [r for r in tier.runs if r.task == task and r.optimizer == opt]


def convergence(tier: Tier, task: str) -> pd.DataFrame:
    rows = []
    for opt in tier.optimizers:
        runs = _runs(tier, task, opt)
        rc = reach([r.ttt for r in runs])
        km = (
            f"{rc.km_median:g} [{rc.km_ci[0]:g}, {rc.km_ci[1]:g}]"
            if rc.km_median is not None and rc.km_ci
            else "-"
        )
        step_s = [tier.summaries[task, opt, r.seed].get("median_step_time_s") for r in runs]
        step_s = [s for s in step_s if isinstance(s, int | float)]
        rows.append(
            {
                "Optimizer": opt,
                "Reached": f"{rc.k}/{rc.n} [{rc.rate_ci[0]:.2f}, {rc.rate_ci[1]:.2f}]",
                "Steps (median of those that reached)": (
                    f"{np.median(rc.steps_reached):g}" if rc.steps_reached else "-"
                ),
                "KM median steps [95 % CI]": km,
                "Diverged": sum(r.status == "diverged" for r in runs),
                "ms/step (indicative)": f"{1e3 * np.median(step_s):.1f}" if step_s else "-",
            }
        )
    return pd.DataFrame(rows)


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
            for r in _runs(tier, task, opt)
        }
        for opt in tier.optimizers
    }


def _not_compared(tier: Tier, task: str, opt: str, values: dict[int, float]) -> str:
    """Why ``opt`` has runs without a test value: ``4 diverged of 10 runs``."""
    test_key, _ = _test_metric(tier, task)
    why = Counter(
        r.status if r.status != "ok" else f"without a {test_key}"
        for r in _runs(tier, task, opt)
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


def memory(tier: Tier, task: str) -> pd.DataFrame:
    rows = []
    for opt in tier.optimizers:
        sums = [tier.summaries[task, opt, r.seed] for r in _runs(tier, task, opt)]
        s = sums[0] if sums else {}
        n = s.get("n_params") or math.nan
        peaks = [x["peak_memory_bytes"] for x in sums if x.get("peak_memory_bytes")]
        rows.append(
            {
                "Optimizer": opt,
                "State bits": s.get("state_bits", "-"),
                "State bytes/param": f"{s.get('optimizer_state_bytes', math.nan) / n:.2f}",
                "Params+grads+state (MB)": f"{s.get('tensor_bytes', math.nan) / 1e6:.3g}",
                "Peak RSS above baseline (MB, median)": (
                    f"{np.median(peaks) / 1e6:.0f}" if peaks else "-"
                ),
            }
        )
    return pd.DataFrame(rows)


def tuning(tier: Tier, task: str) -> pd.DataFrame:
    target = tier.workloads[task].target
    margin = default_margin(target.metric)
    rows = []
    for opt in tier.optimizers:
        trials = [t for t in tier.trials if t.task == task and t.optimizer == opt]
        values = [t.value for t in trials]
        per_study: dict[int, list[float]] = {}
        for t in trials:
            if math.isfinite(t.value):
                per_study.setdefault(t.study, []).append(t.value)
        pick = max if target.direction == "max" else min
        bests = [pick(v) for v in per_study.values()]
        ks = sorted({1, min(4, len(values)), len(values)} - {0}) or [1]
        try:
            eb = expected_best(values, ks, target.direction)
            expected = " / ".join(f"{x:.4f}" for x in eb)
        except ValueError:
            expected = "no finite trial"
        sens = sensitivity(values, margin, target.direction)
        rows.append(
            {
                "Optimizer": opt,
                "Studies x trials": f"{len(per_study)} x {len(values) // max(len(per_study), 1)}",
                "Best per study: median (spread)": (
                    f"{np.median(bests):.4f} ({np.ptp(bests):.4f})" if bests else "-"
                ),
                "Expected best after 1 / 4 / all trials": expected,
                f"Trials within ±{margin:g} of best": f"{sens['within_margin']:.2f}",
                "Diverged trials": f"{sens['diverged']:.2f}",
            }
        )
    return pd.DataFrame(rows)
