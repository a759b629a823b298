"""Beyond AlgoPerf: how much tuning an optimizer needs, from its pool of trials.

Expected best validation metric after ``k`` trials (Dodge et al. 2019, "Show your work"):
with the pool's ``n`` values sorted so that ``v_(1)`` is the worst and ``v_(n)`` the best,
``k`` trials drawn with replacement from the pool have

    E[best of k] = sum_i v_(i) [ (i/n)^k - ((i-1)/n)^k ].

The band is a 95 % percentile bootstrap over the trial pool (resample the ``n`` trials,
recompute the curve). A diverged trial (non-finite value) counts as the pool's worst finite
value (an expectation with a chance of ``-inf`` would be ``-inf`` for every k); how often
trials diverge is reported beside it by :func:`sensitivity`.

Sensitivity: the share of trials whose value is within ``margin`` of the pool's best
(a flat space is easy to tune), and the divergence rate (share of trials not finite).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _oriented(values: Sequence[float], direction: str) -> np.ndarray:
    if direction not in ("max", "min"):
        raise ValueError(f"direction {direction!r}: expected 'max' or 'min'")
    v = np.asarray(values, dtype=float)
    v = np.where(np.isfinite(v), v, -np.inf if direction == "max" else np.inf)
    return v if direction == "max" else -v


def expected_best(values: Sequence[float], ks: Sequence[int], direction: str = "max") -> np.ndarray:
    """Dodge et al.'s expected best value after each ``k`` in ``ks`` trials."""
    v = _oriented(values, direction)
    n = len(v)
    if n == 0 or not np.isfinite(v).any():
        raise ValueError("no finite trial values: no expected-best curve")
    v = np.sort(np.where(np.isfinite(v), v, v[np.isfinite(v)].min()))
    i = np.arange(1, n + 1)
    out = []
    for k in ks:
        w = (i / n) ** k - ((i - 1) / n) ** k
        out.append(float(np.sum(w * v)))
    out = np.asarray(out)
    return out if direction == "max" else -out


@dataclass(frozen=True)
class Curve:
    ks: np.ndarray
    mean: np.ndarray  # expected best after k trials
    low: np.ndarray  # 2.5 % bootstrap percentile
    high: np.ndarray  # 97.5 %


def expected_best_curve(
    values: Sequence[float],
    ks: Sequence[int] | None = None,
    direction: str = "max",
    n_boot: int = 1000,
    seed: int = 0,
) -> Curve:
    """The curve with a bootstrap band over the trial pool."""
    v = np.asarray(values, dtype=float)
    ks = np.arange(1, len(v) + 1) if ks is None else np.asarray(ks)
    rng = np.random.default_rng(seed)
    boots = np.array([expected_best(rng.choice(v, len(v)), ks, direction) for _ in range(n_boot)])
    with np.errstate(invalid="ignore"):
        low, high = np.percentile(boots, [2.5, 97.5], axis=0)
    return Curve(ks, expected_best(v, ks, direction), low, high)


def sensitivity(values: Sequence[float], margin: float, direction: str = "max") -> dict:
    """Share of trials within ``margin`` of the best, and the divergence rate."""
    v = _oriented(values, direction)
    n = len(v)
    if n == 0:
        return {"within_margin": math.nan, "diverged": math.nan, "trials": 0}
    finite = np.isfinite(v)
    best = v[finite].max() if finite.any() else -np.inf
    within = float(np.mean(finite & (v >= best - margin))) if finite.any() else 0.0
    return {"within_margin": within, "diverged": float(1 - finite.mean()), "trials": n}
