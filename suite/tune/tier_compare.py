"""``python -m suite.tune.compare --tier cpu --optimizer NAME --out DIR [--tasks ...]``: one
optimizer against a committed benchmark tier (``make compare TIER=cpu``).

On each complete workload of the tier (its target set, its reference chosen and rerun), the
candidate gets exactly the tier's budget (:mod:`suite.tune.campaign`): ``studies``
independent Optuna studies of ``trials_per_study`` Sobol trials, the pooled choice by time
to the tier's committed target, and the scored seeds. Each scored run alternates with a
control, the tier's reference at its committed choice rerun at the same seed in this
invocation (candidate, control, candidate, ...; :mod:`suite.tune.control`). The control
shows whether this code and machine reproduce the tier's records: where they do, the
candidate takes its place among the tier's optimizers on equal terms (``DIR/report``, the
tier's report with the candidate added); where they do not, the notes say the tier is stale
here and the verdicts stand on the control alone (``DIR/verdicts.md``: paired by seed with
the control, Holm, TOST, reach, seconds). Nothing is written into the tier's folder.

Layout of DIR: ``<task>/<optimizer>/study-<k>``, ``selected.json``, ``reruns/s<seed>`` (as
in the tier), ``control/<task>/<reference>/reruns/s<seed>`` and ``timeline.json``,
``targets.json`` (the tier's targets, copied for the verdicts), ``report/``, ``verdicts.md``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

from suite.record import atomic_write_text
from suite.report.compute.verdicts import workload_verdicts
from suite.report.documents import tier as tier_report
from suite.report.documents.verdicts import write_verdicts
from suite.report.read.targets import read_targets
from suite.tune import control
from suite.tune.plan import done, plan
from suite.tune.protocol import Protocol, read_protocol
from suite.tune.stages import select, selected_overrides
from suite.tune.study import tune
from suite.tune.study_config import StudyConfig, StudyError


def complete(p: Protocol, task: str) -> bool:
    """Whether the tier has set ``task``'s target and chosen and rerun its reference."""
    base = p.out / task / p.reference
    return (
        (p.out / task / "target" / "target.json").is_file()
        and (base / "selected.json").is_file()
        and all((base / "reruns" / f"s{s}" / "summary.json").is_file() for s in p.rerun_seeds)
    )


def tier_ready(p: Protocol) -> bool:
    """Whether every unit of the tier ``p`` is done (:func:`suite.tune.plan.done`, what
    ``make campaign-plan`` counts): then ``compare`` measures against it by default (issue 20),
    not the older baselines."""
    return p.out.is_dir() and all(done(p, u) for u in plan(p))


DEFAULT_TIER = "cpu"  # compare's reference once complete; --baselines DIR keeps the old one


def default_tier() -> str | None:
    """:data:`DEFAULT_TIER` where it is complete under this folder, else None (the baselines).
    Read without composing its optimizers (a package one of them needs may be missing here)."""
    return (
        DEFAULT_TIER
        if tier_ready(Protocol.from_mapping(DEFAULT_TIER, read_protocol(DEFAULT_TIER)))
        else None
    )


def choose_tasks(p: Protocol, tasks: list[str] | None, log=print) -> list[str]:
    """The workloads to compare on: ``tasks`` (each a complete workload of the tier, else one
    line naming it and the valid ones), or every complete one."""
    ready = [t for t in p.workloads if complete(p, t)]
    if tasks is None:
        if not ready:
            raise StudyError(f"no workload of the {p.name} tier under {p.out} is complete yet")
        skipped = [t for t in p.workloads if t not in ready]
        if skipped:
            log(f"not complete in {p.out}, skipped: {', '.join(skipped)}")
        return ready
    for t in tasks:
        if t not in p.workloads:
            raise StudyError(
                f"unknown task {t!r} for the {p.name} tier; valid: {', '.join(p.workloads)}"
            )
        if t not in ready:
            raise StudyError(
                f"task {t!r} is not complete in {p.out} (target, {p.reference}'s choice and "
                f"reruns); complete: {', '.join(ready) or 'none yet'}"
            )
    return list(tasks)


def candidate_protocol(p: Protocol, optimizer: str, out: Path) -> Protocol:
    """The tier's protocol with the candidate's records in ``out``; refused if ``out`` is the tier."""
    if out.resolve() == p.out.resolve() or p.out.resolve() in out.resolve().parents:
        raise StudyError(f"--out {out} is inside the tier {p.out}; give a folder of its own")
    if optimizer in p.optimizers:
        raise StudyError(f"{optimizer!r} is already in the {p.name} tier; its report ranks it")
    return dataclasses.replace(p, out=out, optimizers=(p.reference, optimizer))


def _config(c: Protocol, task: str, optimizer: str, k: int, config_dir: Path | None) -> StudyConfig:
    return dataclasses.replace(c.study(task, optimizer, k), config_dir=config_dir)


def run(
    p: Protocol,
    optimizer: str,
    out: Path,
    tasks: list[str] | None = None,
    config_dir: Path | None = None,
    log=print,
) -> Path:
    """Tune, choose and rerun ``optimizer`` on the tier's budget, each scored seed
    interleaved with the reference control; write ``verdicts.md`` and ``report/``."""
    out = Path(out)
    tasks = choose_tasks(p, tasks, log)
    c = candidate_protocol(p, optimizer, out)
    fixed = {t: selected_overrides(p, t, p.reference) for t in tasks}
    for t in tasks:  # every input checked before any work
        for k in range(p.studies):
            _config(c, t, optimizer, k, config_dir).check()
    targets = {t: json.loads((p.out / t / "target" / "target.json").read_text()) for t in tasks}
    path = out / "targets.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({t: targets[t] for t in sorted(targets)}, indent=2) + "\n")
    for t in tasks:
        log(f"== {t} / {optimizer} on the {p.name} tier, interleaved with a {p.reference} control")
        for k in range(p.studies):
            tune(
                _config(c, t, optimizer, k, config_dir),
                log=lambda line, k=k: log(f"[study-{k}] {line}"),
            )
        chosen = select(c, t, optimizer, targets[t])
        reruns = dataclasses.replace(
            _config(c, t, optimizer, 0, config_dir), out=out / t / optimizer
        )
        ctrl = control.control_config(reruns, p.reference, out)
        by = control.interleaved(ctrl, fixed[t], out / "control" / t / control.TIMELINE)
        by(reruns, SimpleNamespace(user_attrs={"overrides": chosen["overrides"]}), log)
    return report(p, optimizer, out, tasks, log)


def report(p: Protocol, optimizer: str, out: Path, tasks: list[str], log=print) -> Path:
    """``verdicts.md`` against the control and ``report/`` (the tier with the candidate)."""
    targets = read_targets(out / "targets.json")
    timing, notes, stale = {}, [], []
    for t in tasks:
        timing[t] = control.timing_line(out / "control" / t / control.TIMELINE, targets[t])
        k, n = control.control_reproduces(p.out, out, t, p.reference, targets[t])
        notes.append(
            f"{t}: the control reproduces the tier's {p.reference} best "
            f"{targets[t].metric} at {k}/{n} seeds"
        )
        if k != n:
            stale.append(t)
    try:
        lines = workload_verdicts(
            out, out / "control", out / "targets.json", optimizer, p.reference, timing=timing
        )
    except ValueError as e:  # e.g. a metric with no stated margin: the report stands
        lines = [f"no verdicts: {e}"]
    if stale:
        notes.append(
            f"the tier is stale on {', '.join(stale)} for this code and machine: rank the "
            f"candidate by these verdicts against the control, not by report/"
        )
    log("\n".join(lines))
    write_verdicts(lines, out, optimizer, p.reference, notes)
    raw = {**dataclasses.asdict(p), "out": str(p.out), "name": p.name.upper()}
    view = {**raw, "optimizers": [*p.optimizers, optimizer], "roots": {optimizer: str(out)}}
    part = None if set(tasks) == set(p.workloads) else tasks
    tier_report.write(p.out, tier_report.only(view, part), out / "report")
    log(
        f"verdicts: {out / 'verdicts.md'}; the tier with {optimizer}: {out / 'report' / 'README.md'}"
    )
    return out
