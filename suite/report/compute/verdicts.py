"""One line per workload: is a candidate better, worse, equivalent within a margin, or undecided?

Reads scored reruns (``<root>/<task>/<optimizer>/reruns/s<seed>``) of the candidate and of
the reference, pairs them by seed, and states for each workload of ``targets.json``::

    <task>: better|worse|equivalent within margin|inconclusive, effect <d> [<lo>, <hi>] ...
      reach: candidate k/n [..], reference k/n [..]

on the best value of the committed target's (val) metric. Holm's family is fixed as "each
optimizer vs the reference, per workload": with one candidate it has one member, so the
Holm p equals the raw p; :func:`suite.report.compute.claims.family_verdicts` takes several. Margins are fixed here, before any data are read: 0.5 accuracy
point (0.005) for an ``*acc`` metric, 0.01 nats for a ``*loss`` metric; a caller may pass its
own (DeepOBS: one of their seed std). Seconds are not compared: runs not interleaved with
the reference on one machine give only indicative seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from suite.report.compute.claims import Verdict, family_verdicts
from suite.report.compute.reach import reach
from suite.report.read.scored import by_seed, scored_runs
from suite.report.read.targets import read_targets

MARGINS = {"acc": 0.005, "loss": 0.01}


def default_margin(metric: str) -> float:
    """0.005 for an accuracy, 0.01 for a loss (nats); ValueError for any other metric."""
    kind = metric.rsplit("/", 1)[-1]
    if kind not in MARGINS:
        raise ValueError(f"no stated margin for metric {metric!r}; pass margins= (one per task)")
    return MARGINS[kind]


def workload_verdicts(
    candidate_root: Path,
    reference_root: Path,
    targets_path: Path,
    candidate: str,
    reference: str = "torch_adamw_fused",
    margins: Mapping[str, float] | None = None,
) -> list[str]:
    """The verdict lines of ``candidate`` vs ``reference`` on every workload both have."""
    targets = read_targets(targets_path)
    cand_runs = [r for r in scored_runs(candidate_root, targets) if r.optimizer == candidate]
    ref_runs = [r for r in scored_runs(reference_root, targets) if r.optimizer == reference]
    tasks = sorted({r.task for r in cand_runs} & {r.task for r in ref_runs})
    if not tasks:
        return [f"no workload has scored runs of both {candidate!r} and {reference!r}"]
    margins = {t: (margins or {}).get(t) or default_margin(targets[t].metric) for t in tasks}
    out = family_verdicts(
        {candidate: {t: by_seed(cand_runs, t, candidate) for t in tasks}},
        {t: by_seed(ref_runs, t, reference) for t in tasks},
        margins,
        {t: targets[t].direction for t in tasks},
    )[candidate]
    lines = []
    for v in out:
        lines.append(_line(v, f"best {targets[v.workload].metric}"))
        rc = reach([r.ttt for r in cand_runs if r.task == v.workload])
        rr = reach([r.ttt for r in ref_runs if r.task == v.workload])
        lines.append(f"  reach: {candidate} {rc.line()}; {reference} {rr.line()}")
    return lines


def _line(v: Verdict, metric: str) -> str:
    return v.line(metric)
