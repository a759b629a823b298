"""A leaderboard with intervals: profile scores, their bootstrap spread, rank probabilities.

Score (AlgoPerf): per workload ``w`` the time of optimizer ``o`` is the median over seeds
of steps to target (a miss is ``inf``; the median is ``inf`` when half or more missed);
``r_{o,w} = t_{o,w} / min_o t_{o,w}``; ``rho_o(tau) = |{w : r_{o,w} <= tau}| / |W|``;
``S_o`` the mean of ``rho_o`` over ``tau in [1, tau_max]`` (trapezoid rule, as
:func:`suite.report.compute.scoring.score`; here vectorised over replicates).

Interval: ``B`` bootstrap replicates resample the seeds of each workload (the same seed
draw for every optimizer, keeping the pairing); each replicate recomputes every ``S_o``.
The 95 % interval is the 2.5 / 97.5 percentiles of the replicates; ``P(rank = k)`` the share
of replicates in which ``o`` has rank ``k`` (ties share the better rank). A rank is stated
only where the intervals separate: ``o`` is placed above ``o'`` only when the lower end of
``S_o`` exceeds the upper end of ``S_o'``; otherwise the two share a rank range.

Tuning studies are not resampled here: the scored reruns are of the point pooled over
studies, and a study-resampled interval needs each study's own pick rerun (not in the
records); :func:`study_spread` gives the study-to-study spread of the trials instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from suite.report.compute.scoring import TAU_MAX
from suite.report.read.targets import TimeToTarget

B = 2000


def _steps(t: TimeToTarget) -> float:
    return float(t.step) if t.reached and t.step is not None else math.inf


def _arrays(times, opts: list[str], workloads: list[str], seeds: dict) -> list[np.ndarray]:
    """Per workload an optimizer x seed array of steps to target (inf: a miss or no run)."""
    return [
        np.array(
            [
                [
                    _steps(times[o][wl][s]) if s in times[o].get(wl, {}) else math.inf
                    for s in seeds[wl]
                ]
                for o in opts
            ]
        )
        for wl in workloads
    ]


def _profile(medians: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rho (optimizer x tau) from an optimizer x workload matrix of median steps."""
    best = medians.min(axis=0)
    ok = np.isfinite(best) & (best > 0)
    ratio = np.where(ok, medians / np.where(ok, best, 1.0), np.inf)
    return (ratio[:, :, None] <= taus[None, None, :]).mean(axis=1)


def _score(rho: np.ndarray, taus: np.ndarray) -> np.ndarray:
    return np.trapezoid(rho, taus, axis=1) / (taus[-1] - taus[0])


@dataclass(frozen=True)
class Board:
    table: pd.DataFrame  # index optimizer: score, low, high, rank ("1", "2-3", ...)
    rank_probability: pd.DataFrame  # optimizer x rank (1..n): share of replicates
    profiles: pd.DataFrame  # optimizer x tau: rho on the data (the plot's line)
    bands: tuple[pd.DataFrame, pd.DataFrame]  # 2.5 / 97.5 percentile of rho (the band)


def leaderboard(
    times: Mapping[str, Mapping[str, Mapping[int, TimeToTarget]]],
    n_boot: int = B,
    seed: int = 0,
    tau_max: float = TAU_MAX,
) -> Board:
    """``times``: ``{optimizer: {workload: {seed: TimeToTarget}}}`` of the scored runs."""
    if not times:
        raise ValueError("no scored runs: no leaderboard")
    taus = np.linspace(1.0, tau_max, 121)
    opts = sorted(times)
    workloads = sorted({wl for per in times.values() for wl in per})
    seeds = {wl: sorted({s for per in times.values() for s in per.get(wl, {})}) for wl in workloads}
    arrays = _arrays(times, opts, workloads, seeds)
    medians = np.stack([np.median(a, axis=1) for a in arrays], axis=1)
    rho_obs = _profile(medians, taus)
    observed = pd.Series(_score(rho_obs, taus), index=opts)
    rho = pd.DataFrame(rho_obs, index=opts, columns=taus)
    rng = np.random.default_rng(seed)
    scores = np.empty((n_boot, len(opts)))
    rhos = np.empty((n_boot, len(opts), len(taus)))
    for b in range(n_boot):
        draw = [a[:, rng.integers(0, a.shape[1], a.shape[1])] for a in arrays]
        rhos[b] = _profile(np.stack([np.median(a, axis=1) for a in draw], axis=1), taus)
        scores[b] = _score(rhos[b], taus)
    low, high = np.percentile(scores, [2.5, 97.5], axis=0)
    # rank of each optimizer in each replicate: 1 + number strictly better
    ranks = 1 + (scores[:, None, :] > scores[:, :, None]).sum(axis=2)
    prob = pd.DataFrame({k: (ranks == k).mean(axis=0) for k in range(1, len(opts) + 1)}, index=opts)
    table = pd.DataFrame(
        {"score": observed.loc[opts].to_numpy(), "low": low, "high": high}, index=opts
    )
    table["rank"] = [_rank_range(table, o) for o in opts]
    table = table.sort_values("score", ascending=False)
    lo_band = pd.DataFrame(np.percentile(rhos, 2.5, axis=0), index=opts, columns=taus)
    hi_band = pd.DataFrame(np.percentile(rhos, 97.5, axis=0), index=opts, columns=taus)
    return Board(table, prob.loc[table.index], rho.loc[table.index], (lo_band, hi_band))


def _rank_range(table: pd.DataFrame, opt: str) -> str:
    """Ranks ``opt`` could hold given interval overlaps: above it only those clearly better."""
    clearly_better = int((table["low"] > table.loc[opt, "high"]).sum())
    clearly_worse = int((table["high"] < table.loc[opt, "low"]).sum())
    best, worst = 1 + clearly_better, len(table) - clearly_worse
    return str(best) if best == worst else f"{best}-{worst}"


def study_spread(objectives: Mapping[str, list[float]]) -> dict[str, float]:
    """Median and spread of the best objective per tuning study (AlgoPerf: median over studies).

    ``objectives``: ``{study: [trial objective values]}`` (smaller is better). Returns the
    median over studies of each study's best, and the max - min of those bests.
    """
    bests = [min(v) for v in objectives.values() if v]
    if not bests:
        return {"median": math.nan, "spread": math.nan, "studies": 0}
    return {
        "median": float(np.median(bests)),
        "spread": float(np.ptp(bests)),
        "studies": len(bests),
    }
