"""The text every paper-style verdict shares: how values, seeds, configurations and the
comparison family are written (:mod:`suite.report.documents.papers`)."""

from __future__ import annotations

import pandas as pd

from suite.report.read.collect import Records
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


def opening(title: str, paper: str) -> list[str]:
    """A verdict's first lines: its title, what the paper found, the protocol, and the
    :data:`MEASURED` placeholder."""
    return [f"## Verdict: {title}", "", f"**Paper.** {paper}", "", PROTOCOL, "", MEASURED, ""]


BUDGET = (
    "\n**Budget.** Has the val curve flattened? Each chosen configuration rerun at twice the "
    "steps (the schedule stretched with it) at some of its seeds: flattened when the median "
    "gain of the best val metric is below the seed spread at the budget "
    "(`suite/report/documents/flatness.py`).\n\n"
)
LOST = ("diverged", "failed")  # runs with no test value; an interrupted run is rerun, not lost


def not_scored(records: Records) -> str:
    """A paragraph naming the runs a verdict could not score (diverged or failed), per task and
    optimizer with their seeds, so that a comparison paired over the other seeds is read
    with them. Empty when every run finished."""
    runs, problems = records.runs, records.problems
    lost = problems[problems["status"].isin(LOST)]
    if lost.empty:
        return ""
    lines = [
        "",
        "**Not scored** (no test value; where a run is of a chosen configuration, its pairs drop "
        "its seed, which favours the optimizer that lost it):",
        "",
    ]
    for (task, opt), g in lost.groupby(["task", "optimizer"]):
        ok = ((runs["task"] == task) & (runs["optimizer"] == opt)).sum() if len(runs) else 0
        of = ok + ((problems["task"] == task) & (problems["optimizer"] == opt)).sum()
        words = ", ".join(f"{n} {s}" for s, n in g["status"].value_counts().items())
        lines.append(f"- {task} {opt}: {words} of {of} runs (seeds {seeds_text(g)})")
    return "\n".join(lines) + "\n"
