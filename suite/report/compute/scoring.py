"""Scoring across workloads: calibrated val targets, time to target, performance profiles.

**Targets** (:func:`calibrate_targets`, AlgoPerf's rule at our scale). For each workload,
every baseline optimizer was tuned with the same budget and its selected hyperparameters
rerun with n fresh seeds. For optimizer o let m_o be the median over its seeds of the best
value of the workload's val metric. The target is the best m_o over the baselines (AlgoPerf
takes the median over 20 seeds of the best baseline's val error). The targets are written
once with the baselines (``targets.json``) and never recomputed from a candidate's runs.

**Time to target** of one run: the first evaluation whose val metric meets the target, in
steps and in training seconds (``elapsed_s`` of that evaluation); inf if none did. An
optimizer's time on a workload is the median over its seeds (inf when half or more missed).

**Performance profile** (Dolan & Moré 2002, as in AlgoPerf): with t_{o,w} the time of o on
w and r_{o,w} = t_{o,w} / min_o' t_{o',w},

    rho_o(tau) = |{w : r_{o,w} <= tau}| / |W|,   tau in [1, tau_max],

and the integrated score S_o = (1 / (tau_max - 1)) * integral_1^tau_max rho_o(tau) dtau
in [0, 1] (1: fastest on every workload; 0: never within tau_max of the fastest).
Nothing here reads ``test/*``: every number comes from the target's (val) metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

TAU_MAX = 4.0  # AlgoPerf's tau_max
PROCEDURE = (
    "per workload: median over the rerun seeds of the best val metric, for each tuned "
    "baseline optimizer; the target is the best of those medians (AlgoPerf's rule)"
)


@dataclass(frozen=True)
class Target:
    metric: str
    value: float
    direction: str  # "max" | "min"

    def met(self, x: float) -> bool:
        return x >= self.value if self.direction == "max" else x <= self.value


def _better(direction: str):
    return max if direction == "max" else min


def calibrate_targets(runs: pd.DataFrame) -> dict[str, dict]:
    """Per task: {metric, value, direction, from, procedure} from the baseline reruns frame."""
    out = {}
    for task, g in runs.groupby("task", sort=True):
        direction = g["direction"].iloc[0]
        medians = g.groupby("optimizer")["best_val"].median().dropna()
        if medians.empty:
            continue
        best = _better(direction)(medians.index, key=lambda o: medians[o])
        out[task] = {
            "metric": g["metric"].iloc[0],
            "value": float(medians[best]),
            "direction": direction,
            "from": best,
            "seeds": int((g["optimizer"] == best).sum()),
            "procedure": PROCEDURE,
        }
    return out


def time_to(curve: list[tuple[float, float, float]], target: Target) -> tuple[float, float]:
    """(steps, seconds) at the first evaluation meeting the target; (inf, inf) if none."""
    for step, seconds, value in curve:
        if math.isfinite(value) and target.met(value):
            return step, seconds
    return math.inf, math.inf


def times(runs: pd.DataFrame, targets: dict[str, dict]) -> pd.DataFrame:
    """The runs frame with steps_to_target / seconds_to_target against the calibrated targets."""
    runs = runs[runs["task"].isin(targets)].copy()
    steps, secs = [], []
    for _, r in runs.iterrows():
        t = Target(**{k: targets[r["task"]][k] for k in ("metric", "value", "direction")})
        s, sec = time_to(r["curve"], t) if r["status"] == "ok" else (math.inf, math.inf)
        steps.append(s)
        secs.append(sec)
    runs["steps_to_target"], runs["seconds_to_target"] = steps, secs
    return runs


def _median(x: pd.Series) -> float:
    v = np.sort(x.to_numpy(float))
    return float(np.median(v)) if len(v) else math.inf  # inf sorts last: median inf if >= half


def workload_times(timed: pd.DataFrame, unit: str = "steps") -> pd.DataFrame:
    """Optimizer x task matrix of the median time to target over seeds."""
    return timed.pivot_table(
        index="optimizer", columns="task", values=f"{unit}_to_target", aggfunc=_median
    )


def profile(matrix: pd.DataFrame, taus: np.ndarray | None = None) -> pd.DataFrame:
    """rho_o(tau) for every optimizer (rows) at each tau (columns)."""
    taus = np.linspace(1.0, TAU_MAX, 301) if taus is None else taus
    best = matrix.min(axis=0)
    ratio = matrix / best.where(np.isfinite(best) & (best > 0))
    ratio = ratio.fillna(math.inf)  # a workload nobody solved counts as unsolved for all
    rho = {tau: (ratio <= tau).sum(axis=1) / matrix.shape[1] for tau in taus}
    return pd.DataFrame(rho)


def score(rho: pd.DataFrame) -> pd.Series:
    """Integrated performance-profile score S_o in [0, 1] (trapezoid rule over tau)."""
    taus = rho.columns.to_numpy(float)
    span = taus[-1] - taus[0]
    return pd.Series(
        {o: float(np.trapezoid(rho.loc[o].to_numpy(float), taus) / span) for o in rho.index}
    )


def leaderboard(timed: pd.DataFrame) -> pd.DataFrame:
    """One row per optimizer: scores in steps and seconds, workloads solved, seeds, trials."""
    steps, secs = workload_times(timed, "steps"), workload_times(timed, "seconds")
    s_steps, s_secs = score(profile(steps)), score(profile(secs))
    rows = []
    for o in steps.index:
        g = timed[timed["optimizer"] == o]
        rows.append(
            {
                "optimizer": o,
                "score_steps": s_steps[o],
                "score_seconds": s_secs[o],
                "solved": int(np.isfinite(steps.loc[o]).sum()),
                "workloads": steps.shape[1],
                "seeds": int(g.groupby("task").size().min()),
                "trials": int(g["trials"].min()),
                **{f"steps.{t}": steps.loc[o, t] for t in steps.columns},
            }
        )
    board = pd.DataFrame(rows)
    return board.sort_values(["score_steps", "score_seconds"], ascending=False).reset_index(
        drop=True
    )
