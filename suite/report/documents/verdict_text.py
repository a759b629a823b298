"""The text every paper-style verdict shares: how values, seeds, configurations and the
comparison family are written (:mod:`suite.report.documents.experiments`)."""

from __future__ import annotations

import pandas as pd

from suite.report.read.rows import HP


def seeds_text(df: pd.DataFrame) -> str:
    """The seeds of ``df``, ascending: ``1,2,3``."""
    return ",".join(str(s) for s in sorted(set(df["seed"])))


def mean_std(x: pd.Series) -> str:
    """``mean ± std`` (ddof 1) of ``x``; the mean alone for one value."""
    return f"{x.mean():.4f} ± {x.std():.2g}" if len(x) > 1 else f"{x.mean():.4f}"


def family_note(n: int) -> str:
    """How the ``n`` comparisons of one experiment were adjusted and read."""
    return (
        f"_Family: these {n} comparison(s), Holm-adjusted; effect = baseline test error - "
        "candidate test error (> 0: candidate better), paired by seed, bootstrap 95 % interval; "
        "equivalence by TOST at the margin shown._"
    )


def config_text(sel: pd.DataFrame) -> str:
    """The configuration of ``sel`` (one configuration's runs): lr, weight decay, momentum, betas."""
    cols = [c for c in sel.columns if c.startswith(HP) and sel[c].notna().any()]
    keep = [c for c in cols if c.split(".", 1)[1] in ("lr", "weight_decay", "momentum", "betas")]
    return ", ".join(
        f"{c[len(HP) :]}={sel[c].iloc[0]:.3g}"
        if isinstance(sel[c].iloc[0], float)
        else f"{c[len(HP) :]}={sel[c].iloc[0]}"
        for c in keep
    )


MEASURED = "**Measured**"  # a verdict's placeholder line, completed once its scored runs are known


def fill_measured(lines: list[str], what: str) -> None:
    """Complete the :data:`MEASURED` placeholder of ``lines`` with ``what``."""
    lines[lines.index(MEASURED)] = f"{MEASURED} ({what}):"


PROTOCOL = (
    "Every configuration below was chosen on **val** (lowest mean val error of the task's target "
    "metric, best over evaluations); the figures are **test** error at the final evaluation of "
    "that configuration's seeds. Test metrics choose nothing."
)


def scored_seeds(runs: pd.DataFrame, scored: list[pd.DataFrame]) -> str:
    """The seeds the figures come from, and the grid's where they differ (``--fresh``)."""
    seeds = pd.concat(scored) if scored else runs
    if set(seeds["seed"]) <= set(runs["seed"]):
        return f"seeds {seeds_text(seeds)}"
    return (
        f"chosen on val at grid seeds {seeds_text(runs)}, scored at fresh seeds {seeds_text(seeds)}"
    )
