"""Time to target as censored data, recomputed from the evaluations against the committed target.

A run that never reached the target within its budget is *censored* at its last
evaluation: it is a miss, never a hit at the budget. Per optimizer and workload:

* reach rate ``k/n`` with the exact Clopper-Pearson 95 % interval
  (``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``);
* the steps among runs that reached (median, and all values);
* the Kaplan-Meier median of steps to target with its 95 % interval
  (``scipy.stats.ecdf`` on ``scipy.stats.CensoredData``; the median is where the
  estimated survival first drops to 0.5 or below; undefined — reported as None — when
  fewer than half reached).

Each run's time to target is read by :func:`suite.report.read.targets.time_to_target`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from suite.report.read.targets import TimeToTarget


@dataclass(frozen=True)
class Reach:
    """Reach rate and times among the runs of one optimizer on one workload."""

    k: int
    n: int
    rate_ci: tuple[float, float]  # Clopper-Pearson 95 %
    steps_reached: tuple[int, ...]  # steps of the runs that reached, sorted
    km_median: float | None  # Kaplan-Meier median steps (None: fewer than half reached)
    km_ci: tuple[float, float] | None  # its 95 % interval (an upper bound may be inf)

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else math.nan

    def line(self) -> str:
        lo, hi = self.rate_ci
        text = f"reached {self.k}/{self.n} [{lo:.2f}, {hi:.2f}]"
        if self.steps_reached:
            text += f", median {np.median(self.steps_reached):g} steps among those that reached"
        if self.km_median is not None and self.km_ci is not None:
            text += f", KM median {self.km_median:g} [{self.km_ci[0]:g}, {self.km_ci[1]:g}]"
        return text


def reach(times: list[TimeToTarget]) -> Reach:
    """Censored summary of runs' times to target (runs never evaluated count as misses at 0)."""
    n = len(times)
    hits = sorted(t.step for t in times if t.reached and t.step is not None)
    k = len(hits)
    if n == 0:
        return Reach(0, 0, (math.nan, math.nan), (), None, None)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    km_median, km_ci = None, None
    if k and 2 * k >= n:
        censored = [t.step or 0 for t in times if not t.reached]
        data = stats.CensoredData(uncensored=hits, right=censored)
        sf = stats.ecdf(data).sf
        km_median = _median_of(sf.quantiles, sf.probabilities)
        if k == n:  # nothing censored: the band is undefined where the curve reaches 0
            km_ci = _median_order_ci(hits)
        else:
            with warnings.catch_warnings():  # undefined where the curve reaches 0: inf bounds
                warnings.filterwarnings("ignore", "The confidence interval is undefined")
                band = sf.confidence_interval(0.95)
            low = _median_of(band.low.quantiles, band.low.probabilities)
            high = _median_of(band.high.quantiles, band.high.probabilities)
            km_ci = (low if low is not None else 0.0, high if high is not None else math.inf)
    return Reach(k, n, (float(ci.low), float(ci.high)), tuple(hits), km_median, km_ci)


def _median_order_ci(steps: list[int], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median of uncensored ``steps``: the order statistics
    x_(j), x_(n+1-j) with the largest j such that P(Bin(n, 1/2) < j) <= (1 - level) / 2
    (n = 10: x_(2), x_(9), 97.9 %); the whole range where n is too small for any j."""
    n, xs = len(steps), sorted(steps)
    j = int(stats.binom.ppf((1 - level) / 2, n, 0.5))  # P(Bin < j) <= (1 - level) / 2
    if stats.binom.cdf(j, n, 0.5) <= (1 - level) / 2:
        j += 1
    j = max(j, 1)
    return float(xs[j - 1]), float(xs[n - j])


def _median_of(steps: np.ndarray, survival: np.ndarray) -> float | None:
    """First step at which a survival curve is at or below 0.5 (None when it never is)."""
    at = np.nonzero(np.asarray(survival) <= 0.5 + 1e-12)[0]
    return float(steps[at[0]]) if len(at) else None


def target_consistency(k: int, n: int, m: int) -> float:
    """Two-sided p that the scored seeds and the target-setting seeds share one distribution,
    from the reference's reach ``k`` of ``n`` scored runs against a target that is the median
    of its ``m`` target-setting runs.

    If the ``n + m`` best values are exchangeable, the median of ``m`` sits at a uniform
    quantile ``U ~ Beta(a, a)`` with ``a = (m + 1) / 2``, so ``k ~ BetaBinomial(n, a, a)``: half
    of the scored runs reach on average, and a target set by lucky (or unlucky) seeds shows
    as a ``k`` far from ``n / 2``. p sums the probabilities no larger than that of ``k``
    (the exact test's rule). m = 5, n = 10: p(k = 0) = 2 B(3, 13) / B(3, 3) = 0.044."""
    a = (m + 1) / 2
    pmf = stats.betabinom.pmf(np.arange(n + 1), n, a, a)
    return float(min(1.0, pmf[pmf <= pmf[k] * (1 + 1e-9)].sum()))
