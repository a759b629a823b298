"""The tier's tables (issue 20), each a DataFrame computed from a complete :class:`Tier`.

* leaderboard: AlgoPerf's integrated performance-profile score on steps to the committed
  val target, with a seed-bootstrap 95 % interval, the rank range the intervals allow and
  P(rank 1) (:mod:`suite.report.compute.leaderboard`); overall and per model kind.
* convergence: reach k/n with its exact interval, steps among the runs that reached, the
  Kaplan-Meier median (:mod:`suite.report.compute.reach`: a miss is never a hit at the budget), the
  training seconds to the target among the runs that reached and the median step time (both
  indicative: campaign runs are not interleaved, and shared the machine).
* the answer and generalization, on the test metric: :mod:`suite.report.present.tier_answer`.
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

import numpy as np
import pandas as pd

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


def convergence(tier: Tier, task: str) -> pd.DataFrame:
    rows = []
    for opt in tier.optimizers:
        runs = tier.scored(task, opt)
        rc = reach([r.ttt for r in runs])
        km = (
            f"{rc.km_median:g} [{rc.km_ci[0]:g}, {rc.km_ci[1]:g}]"
            if rc.km_median is not None and rc.km_ci
            else "-"
        )
        seconds = [r.ttt.seconds for r in runs if r.ttt.reached and r.ttt.seconds is not None]
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
                "Train seconds to target (median of those that reached; indicative)": (
                    f"{np.median(seconds):.3g}" if seconds else "-"
                ),
                "Diverged": sum(r.status == "diverged" for r in runs),
                "ms/step (indicative)": f"{1e3 * np.median(step_s):.1f}" if step_s else "-",
            }
        )
    return pd.DataFrame(rows)


def memory(tier: Tier, task: str) -> pd.DataFrame:
    rows = []
    for opt in tier.optimizers:
        sums = [tier.summaries[task, opt, r.seed] for r in tier.scored(task, opt)]
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
