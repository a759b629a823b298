"""Claims a reviewer accepts: paired by seed, adjusted for the family, equivalence by margin.

Runs of two optimizers at the same seed share initialisation and batch order, so the
unit of evidence is the paired difference ``d_i = candidate_i - reference_i`` (i over
seeds), oriented so that ``d > 0`` means the candidate is better (for a metric to
minimise the sign is flipped).

* Test of ``E[d] = 0``: exact sign-flip permutation test of the mean
  (``scipy.stats.permutation_test(permutation_type="samples")``; all ``2^n`` flips when
  ``n <= 12``). With ``n`` seeds the smallest two-sided p is ``2 / 2^n`` (0.0625 at n=5),
  which the verdict states rather than hides.
* Interval: percentile bootstrap 95 % interval of the mean of ``d``
  (``scipy.stats.bootstrap``, resampling seeds).
* Effect size: ``d_z = mean(d) / sd(d)`` (Cohen's d for paired data).
* Family: Holm's step-down adjustment (statsmodels is absent from the venv, so it is
  written here): with sorted raw p-values ``p_(1) <= ... <= p_(m)``,
  ``p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``. It controls the family-wise error
  rate at ``alpha``. The family is fixed before the data are read: *each optimizer vs the
  reference AdamW, per workload*.
* Equivalence: TOST with a margin ``delta`` stated up front: ``H01: E[d] <= -delta`` and
  ``H02: E[d] >= delta``, each a one-sided one-sample t-test; ``p_TOST = max(p1, p2)``.
* Seeds that would decide an inconclusive comparison, from the observed paired sd ``s``
  (normal approximation, power ``1 - beta``): equivalence
  ``n = ((z_{1-alpha} + z_{1-beta/2}) s / (delta - |mean d|))^2``; difference
  ``n = ((z_{1-alpha/2} + z_{1-beta}) s / |mean d|)^2``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8
N_RESAMPLES = 9999


@dataclass(frozen=True)
class Paired:
    """A paired comparison of a candidate with a reference over shared seeds."""

    seeds: tuple  # the seeds both sides have, in order
    mean_diff: float  # mean of d (d > 0: candidate better)
    ci: tuple[float, float]  # bootstrap 95 % interval of mean d
    sd_diff: float  # sample sd of d (ddof=1)
    effect: float  # d_z = mean / sd (nan when sd == 0)
    p: float  # exact sign-flip permutation p, two-sided (nan with n < 2)
    min_p: float  # the smallest p this many seeds can give, 2 / 2^n

    @property
    def n(self) -> int:
        return len(self.seeds)


def _orient(values: np.ndarray, direction: str) -> np.ndarray:
    if direction not in ("max", "min"):
        raise ValueError(f"direction {direction!r}: expected 'max' or 'min'")
    return values if direction == "max" else -values


def _mean_stat(x, axis=-1):
    return np.mean(x, axis=axis)


def paired(
    candidate: Mapping[int, float],
    reference: Mapping[int, float],
    direction: str = "max",
    seed: int = 0,
) -> Paired:
    """Compare ``candidate`` with ``reference``, both ``{seed: value}``, on the seeds they share."""
    seeds = tuple(sorted(set(candidate) & set(reference)))
    a = np.array([candidate[s] for s in seeds], dtype=float)
    b = np.array([reference[s] for s in seeds], dtype=float)
    d = _orient(a, direction) - _orient(b, direction)
    n = len(d)
    if n == 0:
        nan = math.nan
        return Paired(seeds, nan, (nan, nan), nan, nan, nan, nan)
    if not np.isfinite(d).all():
        raise ValueError(f"non-finite paired differences at seeds {seeds}: {d.tolist()}")
    mean = float(d.mean())
    mean = 0.0 if abs(mean) < 1e-12 else mean  # float noise of equal values, not an effect
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    min_p = min(1.0, 2.0 / 2**n)
    if n < 2:
        return Paired(seeds, mean, (math.nan, math.nan), sd, math.nan, math.nan, min_p)
    if np.ptp(d) == 0:  # every seed moved by the same amount: no resampling spread
        p = 1.0 if mean == 0 else min_p
        return Paired(seeds, mean, (mean, mean), 0.0, math.nan, p, min_p)
    rng = np.random.default_rng(seed)
    perm = stats.permutation_test(
        (d,),
        _mean_stat,
        permutation_type="samples",
        n_resamples=N_RESAMPLES if n > 12 else 2**n,
        alternative="two-sided",
        vectorized=True,
        rng=rng,
    )
    boot = stats.bootstrap(
        (d,),
        _mean_stat,
        confidence_level=0.95,
        n_resamples=N_RESAMPLES,
        method="percentile",
        vectorized=True,
        rng=rng,
    )
    ci = (float(boot.confidence_interval.low), float(boot.confidence_interval.high))
    return Paired(seeds, mean, ci, sd, mean / sd, float(perm.pvalue), min_p)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order (NaN stays NaN and is not counted in m)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), math.nan)
    idx = [i for i in np.argsort(p, kind="stable") if not math.isnan(p[i])]
    m, running = len(idx), 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def tost(diffs: Sequence[float], margin: float) -> float:
    """p of the two one-sided tests that the mean paired difference lies within ±margin."""
    d = np.asarray(diffs, dtype=float)
    if margin <= 0 or not math.isfinite(margin):
        raise ValueError(f"equivalence margin {margin!r}: expected a positive finite number")
    if len(d) < 2:
        return math.nan
    if np.ptp(d) == 0:
        return 0.0 if abs(d[0]) < margin else 1.0
    lower = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
    upper = stats.ttest_1samp(d, margin, alternative="less").pvalue
    return float(max(lower, upper))


def seeds_to_decide(
    mean: float,
    sd: float,
    margin: float,
    alpha: float = ALPHA,
    power: float = POWER,
    family_size: int = 1,
) -> int | None:
    """Seeds at which a comparison with this paired mean and sd would likely be decided.

    Equivalence when ``|mean| < margin`` (TOST, which is not adjusted), else a difference
    at Holm's strictest level ``alpha / family_size`` (two-sided), so that a comparison
    inconclusive at n seeds is not told that fewer would decide it; for a difference also
    at least the seeds whose sign-flip floor survives Holm, ``family_size * 2 / 2^n < alpha``.
    None when no number of seeds would (sd unknown or zero, or mean 0 outside the margin).
    """
    if not (math.isfinite(sd) and sd > 0):
        return None
    z = stats.norm.ppf
    if abs(mean) < margin:
        n = ((z(1 - alpha) + z(1 - (1 - power) / 2)) * sd / (margin - abs(mean))) ** 2
    elif mean != 0:
        n = ((z(1 - alpha / (2 * family_size)) + z(power)) * sd / abs(mean)) ** 2
        floor = math.floor(math.log2(2 * family_size / alpha)) + 1
        n = max(n, floor)
    else:
        return None
    return max(2, math.ceil(n))


@dataclass(frozen=True)
class Verdict:
    """One workload's claim about a candidate against the reference."""

    workload: str
    word: str  # "better" | "worse" | "equivalent within margin" | "inconclusive" | "no data"
    comparison: Paired
    p_holm: float
    p_tost: float
    margin: float
    seeds_needed: int | None

    def line(self, metric: str = "") -> str:
        c = self.comparison
        if self.word == "no data":
            return f"{self.workload}: no data (no seeds shared with the reference)"
        what = f" {metric}" if metric else ""
        text = (
            f"{self.workload}: {self.word}, effect{what} {c.mean_diff:+.4g} "
            f"[{c.ci[0]:+.4g}, {c.ci[1]:+.4g}] (n={c.n} paired seeds, d_z={c.effect:.2g}, "
            f"p={c.p:.3g}, Holm p={self.p_holm:.3g}, TOST p={self.p_tost:.3g} at ±{self.margin:g})"
        )
        if self.word == "inconclusive":
            more = self.seeds_needed
            text += f"; about {more} seeds would decide it" if more else "; no seed count would"
            if c.n and c.min_p > ALPHA:
                text += f" (with {c.n} seeds the smallest possible p is {c.min_p:.3g})"
        return text


def verdicts(
    candidate: Mapping[str, Mapping[int, float]],
    reference: Mapping[str, Mapping[int, float]],
    margins: Mapping[str, float],
    directions: Mapping[str, str],
    alpha: float = ALPHA,
) -> list[Verdict]:
    """A verdict per workload for one candidate; Holm over the workloads of this family.

    ``candidate``/``reference``: ``{workload: {seed: value}}``; ``margins`` the equivalence
    margin per workload (stated before reading the data); ``directions`` 'max' or 'min'.
    For a family spanning several candidates use :func:`family_verdicts`.
    """
    return family_verdicts({"": candidate}, reference, margins, directions, alpha)[""]


def family_verdicts(
    candidates: Mapping[str, Mapping[str, Mapping[int, float]]],
    reference: Mapping[str, Mapping[int, float]],
    margins: Mapping[str, float],
    directions: Mapping[str, str],
    alpha: float = ALPHA,
) -> dict[str, list[Verdict]]:
    """Verdicts for ``{optimizer: {workload: {seed: value}}}`` vs the reference.

    Holm's adjustment runs *within each workload* over the optimizers compared with the
    reference (the family "each optimizer vs the reference AdamW, per workload").
    """
    comps: dict[tuple[str, str], Paired] = {}
    for opt, per_workload in candidates.items():
        for wl, values in per_workload.items():
            if wl not in reference:
                raise KeyError(f"workload {wl!r} has no reference runs; have {sorted(reference)}")
            comps[opt, wl] = paired(values, reference[wl], directions[wl])
    adjusted: dict[tuple[str, str], float] = {}
    for wl in {w for _, w in comps}:
        keys = [k for k in comps if k[1] == wl]
        for k, p in zip(keys, holm([comps[k].p for k in keys]), strict=True):
            adjusted[k] = p
    out: dict[str, list[Verdict]] = {opt: [] for opt in candidates}
    for (opt, wl), c in comps.items():
        m = sum(1 for k in comps if k[1] == wl)
        out[opt].append(judge(wl, c, adjusted[opt, wl], margins[wl], alpha, m))
    return out


def judge(
    wl: str, c: Paired, p_holm: float, margin: float, alpha: float, family_size: int
) -> Verdict:
    """The word for one comparison: better/worse (Holm p < alpha and the interval excludes
    0), else equivalent within margin (TOST p < alpha), else inconclusive with seeds needed."""
    if c.n == 0:
        return Verdict(wl, "no data", c, math.nan, math.nan, margin, None)
    d_mean = c.mean_diff
    p_tost = _tost_from(c, margin)
    excludes_zero = c.ci[0] > 0 or c.ci[1] < 0
    if p_holm < alpha and excludes_zero:
        word = "better" if d_mean > 0 else "worse"
    elif p_tost < alpha:
        word = "equivalent within margin"
    else:
        word = "inconclusive"
    needed = None
    if word == "inconclusive":
        needed = seeds_to_decide(d_mean, c.sd_diff, margin, alpha, family_size=family_size)
    return Verdict(wl, word, c, p_holm, p_tost, margin, needed)


def _tost_from(c: Paired, margin: float) -> float:
    """TOST p from the paired summary (the t statistic needs only mean, sd and n)."""
    if c.n < 2:
        return math.nan
    if c.sd_diff == 0:
        return 0.0 if abs(c.mean_diff) < margin else 1.0
    se = c.sd_diff / math.sqrt(c.n)
    t = stats.t(df=c.n - 1)
    lower = t.sf((c.mean_diff + margin) / se)
    upper = t.cdf((c.mean_diff - margin) / se)
    return float(max(lower, upper))
