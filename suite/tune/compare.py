"""``python -m suite.tune.compare --optimizer NAME --out DIR [--baselines results/baselines]``

Tunes one optimizer on every workload of the committed baselines (or ``--tasks``) with
exactly their budget (trials, steps, evaluations, sampler, seeds, run overrides, read from
their ``study.json``). Its reruns alternate with a control: the reference AdamW at its
committed hyperparameters, rerun at the same seeds in this invocation (candidate, control,
candidate, ...; :mod:`suite.tune.control`), so that seconds and step-time ratios come from
comparable runs. Then it writes the leaderboard against the baselines into DIR
(``report.md``) and one verdict line per workload against the reference (``verdicts.md``:
paired by seed with the control, Holm, TOST, reach, seconds; the committed reruns are
compared with the control in a note, which shows a stale baseline).
The committed targets are used as they are.

``--tier cpu`` compares against a benchmark tier instead (``results/cpu``, the tier's own
budget, studies and seeds): :mod:`suite.tune.tier_compare`. With neither ``--tier`` nor
``--baselines`` it does so once that tier is complete (every unit of ``make campaign-plan``
done), else against ``results/baselines``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from suite.record import RecordError
from suite.report.compute.verdicts import workload_verdicts
from suite.report.documents.protocol import write as write_report
from suite.report.documents.verdicts import write_verdicts
from suite.report.read.studies import find_studies
from suite.report.read.targets import read_targets
from suite.tune import control
from suite.tune.protocol import Protocol
from suite.tune.space import SpaceError
from suite.tune.study import tune
from suite.tune.study_config import StudyConfig, StudyError
from suite.tune.tier_compare import DEFAULT_TIER, default_tier
from suite.tune.tier_compare import run as run_on_tier


def budgets(baselines: Path) -> dict[str, dict]:
    """The one budget per task of the committed studies; StudyError if they disagree."""
    out: dict[str, dict] = {}
    for st in find_studies([baselines]):
        b = st.budget
        if st.task in out and out[st.task] != b:
            raise StudyError(f"baselines of {st.task} in {baselines} have unequal budgets")
        out[st.task] = b
    if not out:
        raise StudyError(f"no committed baselines (study.json) in {baselines}: run make baselines")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m suite.tune.compare", description=__doc__.split("\n\n")[1]
    )
    p.add_argument("--optimizer", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--baselines", type=Path, default=None, help="default: results/baselines")
    p.add_argument(
        "--tier", default=None, help="a tier (suite/conf/protocol/<name>.yaml), e.g. cpu"
    )
    p.add_argument("--config-dir", type=Path, default=None, help="a folder of optimizer/*.yaml")
    p.add_argument(
        "--reference",
        default=None,
        help="the control and the verdicts' reference; default: the first committed of "
        + ", ".join(control.REFERENCES),
    )
    p.add_argument("--tasks", nargs="+", default=None, help="a subset of the baselines' tasks")
    a = p.parse_args(argv)
    if a.tier is None and a.baselines is None:
        a.tier = default_tier()
        if a.tier is not None:
            print(
                f"against the complete {DEFAULT_TIER} tier; --baselines results/baselines "
                "for the older baselines",
                flush=True,
            )
    if a.tier is not None:
        return _on_tier(a)
    a.baselines = a.baselines or Path("results/baselines")
    try:
        per_task = budgets(a.baselines)
        if a.tasks is not None:
            bad = [t for t in a.tasks if t not in per_task]
            if bad:
                raise StudyError(
                    f"unknown task {bad[0]!r} for {a.baselines}; valid: {', '.join(sorted(per_task))}"
                )
            per_task = {t: per_task[t] for t in a.tasks}
        reference = control.pick_reference(a.baselines, sorted(per_task), a.reference)
        if not (a.baselines / "targets.json").is_file():
            raise StudyError(f"{a.baselines}/targets.json is missing: run make baselines")
        configs = [
            StudyConfig(
                task=task,
                optimizer=a.optimizer,
                trials=int(b["trials"]),
                out=a.out / "studies" / task / a.optimizer,
                steps=b["steps"],
                sampler=b["sampler"],
                sampler_seed=b["sampler_seed"],
                tune_seed=b["tune_seed"],
                rerun_seeds=tuple(b["rerun_seeds"]),
                evals=b["evals"],
                extra=tuple(b["extra"]),
                config_dir=a.config_dir,
            )
            for task, b in sorted(per_task.items())
        ]
        controls = {c.task: control.control_config(c, reference, a.out) for c in configs}
        for c in configs:
            c.check()
            controls[c.task].check()
        fixed = {t: control.committed_overrides(a.baselines, k) for t, k in controls.items()}
        for c in configs:
            print(
                f"== {c.task} / {c.optimizer}, interleaved with a {reference} control", flush=True
            )
            timeline = a.out / "control" / c.task / control.TIMELINE
            by = control.interleaved(controls[c.task], fixed[c.task], timeline)
            tune(c, log=lambda line: print(line, flush=True), reruns_by=by)
        committed = [
            st.folder
            for st in find_studies([a.baselines])
            if st.optimizer != a.optimizer  # a committed study of the same name is replaced
        ]
        cmd = "python -m suite.tune.compare " + shlex.join(sys.argv[1:] if argv is None else argv)
        write_report(
            [*committed, a.out / "studies"], a.out, a.baselines / "targets.json", a.optimizer, cmd
        )
        targets = read_targets(a.baselines / "targets.json")
        timing, notes = {}, []
        timed = [t for t in sorted(targets) if (a.out / "control" / t / control.TIMELINE).is_file()]
        for t in timed:  # an earlier invocation into the same OUT (e.g. --tasks) counts too
            timing[t] = control.timing_line(a.out / "control" / t / control.TIMELINE, targets[t])
            k, n = control.control_reproduces(a.baselines, a.out, t, reference, targets[t])
            notes.append(
                f"{t}: the control reproduces the committed {reference} best "
                f"{targets[t].metric} at {k}/{n} seeds"
                + ("" if k == n else " (the baselines may be stale: compare with care)")
            )
        try:
            lines = workload_verdicts(  # paired with the control: same code, seeds, stretch
                a.out / "studies",
                a.out / "control",
                a.baselines / "targets.json",
                a.optimizer,
                reference,
                timing=timing,
            )
        except ValueError as e:  # e.g. a metric with no stated margin: the report stands
            lines = [f"no verdicts: {e}"]
        print("\n".join(lines), flush=True)
        write_verdicts(lines, a.out, a.optimizer, reference, notes)
    except (StudyError, SpaceError, RecordError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    print(f"leaderboard written to {a.out / 'report.md'}")
    return 0


def _on_tier(a: argparse.Namespace) -> int:
    try:
        if a.baselines is not None:
            raise StudyError("--baselines and --tier exclude each other: give one")
        tier = Protocol.load(a.tier)
        if a.reference not in (None, tier.reference):
            raise StudyError(
                f"the {a.tier} tier's reference is {tier.reference}, not {a.reference}"
            )
        run_on_tier(
            tier, a.optimizer, a.out, a.tasks, a.config_dir, log=lambda s: print(s, flush=True)
        )
    except (StudyError, SpaceError, RecordError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
