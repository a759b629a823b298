"""One line per workload: is a candidate better, worse, equivalent within a margin, or undecided?

Reads scored reruns (``<root>/<task>/<optimizer>/reruns/s<seed>``) of the candidate and of
the reference, pairs them by seed, and states for each workload of ``targets.json``::

    <task>: better|worse|equivalent within ±m|inconclusive (about n seeds would decide),
      effect <d> [<lo>, <hi>], Holm p; reach k/n vs k/n; <seconds from the interleaved control>

(one line each; wrapped here)
on the best value of the committed target's (val) metric. Holm's family is fixed as "each
optimizer vs the reference, per workload": with one candidate it has one member, so the
Holm p equals the raw p; :func:`suite.report.compute.claims.family_verdicts` takes several. Margins are fixed here, before any data are read: 0.5 accuracy
point (0.005) for an ``*acc`` metric, 0.01 nats for a ``*loss`` metric; a caller may pass its
own (DeepOBS: one of their seed std). Seconds come only from a control interleaved with the
candidate (``timing``, from :mod:`suite.tune.control`); the committed baselines' seconds were
made on other days and loads and are indicative only, so they are not compared here.
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
    timing: Mapping[str, str] | None = None,
) -> list[str]:
    """One verdict line per workload both have, ``candidate`` vs ``reference``; ``timing``
    adds a clause on seconds per workload (from runs interleaved with the candidate)."""
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
        rc = reach([r.ttt for r in cand_runs if r.task == v.workload])
        rr = reach([r.ttt for r in ref_runs if r.task == v.workload])
        line = _line(v, f"best {targets[v.workload].metric}")
        line += f"; reach {rc.k}/{rc.n} vs {rr.k}/{rr.n}"
        seconds = (timing or {}).get(v.workload)
        lines.append(line + f"; {seconds}" if seconds else line)
    return lines


def _line(v: Verdict, metric: str) -> str:
    """``<task>: <word>, effect <metric> <d> [<lo>, <hi>], Holm p=..`` and the details."""
    c = v.comparison
    if v.word == "no data":
        return v.line(metric)
    word = v.word
    if word == "equivalent within margin":
        word = f"equivalent within ±{v.margin:g}"
    elif word == "inconclusive":
        more = v.seeds_needed
        word += f" ({more} seeds would decide)" if more else " (no seed count would decide)"
    return (
        f"{v.workload}: {word}, effect {metric} {c.mean_diff:+.4g} "
        f"[{c.ci[0]:+.4g}, {c.ci[1]:+.4g}], Holm p={v.p_holm:.3g} "
        f"(raw p={c.p:.3g}, TOST p={v.p_tost:.3g} at ±{v.margin:g}, n={c.n} paired seeds)"
    )
