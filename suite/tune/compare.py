"""``python -m suite.tune.compare --optimizer NAME --out DIR [--baselines results/baselines]``

Tunes one optimizer on every workload of the committed baselines with exactly their
budget (trials, steps, evaluations, sampler, seeds, run overrides, read from their
``study.json``), then writes the leaderboard against them, with Welch p-values for
every claim, into DIR (``report.md``), and one verdict line per workload against the
reference (``--reference``, paired by seed, Holm, TOST; ``verdicts.md``). The committed
targets are used as they are.
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
from suite.tune.space import SpaceError
from suite.tune.study import StudyConfig, StudyError, tune


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
    p.add_argument("--baselines", type=Path, default=Path("results/baselines"))
    p.add_argument("--config-dir", type=Path, default=None, help="a folder of optimizer/*.yaml")
    p.add_argument("--reference", default="torch_adamw_fused", help="optimizer of the verdicts")
    a = p.parse_args(argv)
    try:
        per_task = budgets(a.baselines)
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
        for c in configs:
            c.check()
        for c in configs:
            print(f"== {c.task} / {c.optimizer}", flush=True)
            tune(c, log=lambda line: print(line, flush=True))
        committed = [
            st.folder
            for st in find_studies([a.baselines])
            if st.optimizer != a.optimizer  # a committed study of the same name is replaced
        ]
        cmd = "python -m suite.tune.compare " + shlex.join(sys.argv[1:] if argv is None else argv)
        write_report(
            [*committed, a.out / "studies"], a.out, a.baselines / "targets.json", a.optimizer, cmd
        )
        try:
            lines = workload_verdicts(
                a.out / "studies",
                a.baselines,
                a.baselines / "targets.json",
                a.optimizer,
                a.reference,
            )
        except ValueError as e:  # e.g. a metric with no stated margin: the report stands
            lines = [f"no verdicts: {e}"]
        print("\n".join(lines), flush=True)
        write_verdicts(lines, a.out, a.optimizer, a.reference)
    except (StudyError, SpaceError, RecordError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    print(f"leaderboard written to {a.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
