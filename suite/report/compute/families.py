"""A family of paired comparisons on **test** error, at configurations already chosen on val
(:func:`suite.report.compute.selection.select_on_val`): the paper-style verdicts' statistics.

Each comparison pairs the candidate's and the baseline's runs by seed (same seed, same
initialisation and batches) on test error ``e`` (``1 - m`` for a max target, ``m`` for a min
target); the effect is ``d = e_baseline - e_candidate`` (> 0: the candidate is better), and the
family's p-values are Holm-adjusted (:mod:`suite.report.compute.claims`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from suite.report.compute.claims import ALPHA, Verdict, holm, judge, paired
from suite.report.compute.verdicts import default_margin


def test_error(df: pd.DataFrame) -> pd.Series:
    """The same metric on the test split at the final evaluation, as an error."""
    return pd.Series(
        np.where(df["target_direction"] == "max", 1.0 - df["final_test"], df["final_test"]),
        index=df.index,
    )


def paired_family(items: list[tuple[str, pd.DataFrame, pd.DataFrame]]) -> list[Verdict]:
    """``[(label, candidate runs, baseline runs)]`` -> a verdict each, Holm over the list.

    Paired by seed on test error (``d > 0``: the candidate's error is lower)."""
    comps = []
    for _, cand, base in items:
        a = dict(zip(cand["seed"], test_error(cand), strict=True))
        b = dict(zip(base["seed"], test_error(base), strict=True))
        comps.append(paired(a, b, "min"))
    adjusted = holm([c.p for c in comps])
    return [
        judge(label, c, q, default_margin(str(cand["test_metric"].iloc[0])), ALPHA, len(items))
        for (label, cand, _), c, q in zip(items, comps, adjusted, strict=True)
    ]
