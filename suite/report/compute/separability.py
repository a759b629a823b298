"""Is one weight decay near-best at every learning rate of an lr x wd grid? With seed noise.

Loshchilov & Hutter (ICLR 2019) claim that with Adam + L2 the good weight decay moves with
the learning rate (a diagonal basin) while AdamW's does not (a basin aligned with the axes).
Counting the distinct argmin wd per lr row reads noise as a move: where two cells are
within a seed spread of each other, the argmin is a coin flip. Here, at each lr the
**near-best** set holds every wd whose val error is not shown worse than the row's best by
more than the margin stated for the metric (0.005 accuracy, 0.01 nats: the suite's
equivalence margins): the paired differences over the seeds both cells share (same seed,
same initialisation and batches) have a 95 % t interval whose lower end is within the
margin. (Without the margin, pairing shows a 0.0003-nat cost of a tiny decay "worse".)
The grid is **separable** where some positive wd is near-best at every lr (wd 0 is no
decay at all, the same update for both, so it cannot separate them). With one seed there is
no noise estimate: the mean difference alone is held to the margin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def near_best(errors: pd.DataFrame, margin: float = 0.0) -> set[float]:
    """The wds of one lr row not shown worse than its best by more than ``margin``.
    ``errors``: index seed, columns wd, values val error (lower is better); seeds missing a
    cell are left out."""
    errors = errors.dropna()
    means = errors.mean()
    best = means.idxmin()
    n = len(errors)
    out = set()
    for wd in errors.columns:
        d = (errors[wd] - errors[best]).to_numpy()
        half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
        close = d.mean() - half <= margin
        if close:
            out.add(float(wd))
    return out


def near_best_per_lr(
    runs: pd.DataFrame, error: pd.Series, lr: str, wd: str, margin: float = 0.0
) -> dict:
    """{lr: near-best wds} for one optimizer's grid (``error``: each run's val error)."""
    table = runs.assign(_err=error).pivot_table(
        index="seed", columns=[lr, wd], values="_err", aggfunc="mean"
    )
    return {
        float(rate): near_best(table[rate], margin)
        for rate in sorted(table.columns.get_level_values(0).unique())
    }


def common(near: dict) -> set[float]:
    """The positive wds near-best at every lr (empty: no single decay serves the whole lr
    axis). wd 0 is left out: without decay Adam + L2 and AdamW are the same update, so it
    cannot tell them apart."""
    sets = list(near.values())
    return (set.intersection(*sets) - {0.0}) if sets else set()


def agreement(adam: set[float], adamw: set[float]) -> str:
    """The paper's separability claim against the two grids' common near-best positive wds."""
    if adamw and not adam:
        return (
            "agrees with the paper (a positive weight decay is near-best at every lr for "
            "AdamW, none for Adam)"
        )
    if adam and not adamw:
        return (
            "does not agree with the paper (a positive weight decay is near-best at every lr "
            "for Adam, none for AdamW)"
        )
    if adam and adamw:
        return "inconclusive: a positive weight decay is near-best at every lr for both"
    return "inconclusive: no positive weight decay is near-best at every lr for either"


def _wds(wds: set[float]) -> str:
    return "{" + ", ".join(f"{w:g}" for w in sorted(wds)) + "}"


def describe(near: dict) -> str:
    """One optimizer's near-best sets, ``lr 0.001 -> {0, 0.01}, ...``."""
    return ", ".join(f"lr {lr:g} -> {_wds(s)}" for lr, s in near.items())


def serving_line(serves: dict[str, set[float]], margin: float) -> str:
    """The rule and each optimizer's positive wds near-best at every lr, in one sentence."""
    return (
        "Near-best: the weight decays whose val error is not shown worse than the lr row's "
        f"best by more than {margin:g} (paired by seed, the lower end of a 95 % t interval). "
        "A positive weight decay near-best at every lr: "
        + "; ".join(f"{opt} {_wds(wds)}" for opt, wds in serves.items())
        + "."
    )
