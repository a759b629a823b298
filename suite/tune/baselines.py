"""``python -m suite.tune.baselines [--out results/baselines] [--tasks ...] [--optimizers ...]``

Tunes every baseline optimizer on every baseline workload with one budget (below), then
calibrates the val targets from them (``targets.json``, :mod:`suite.report.compute.scoring`),
writes the protocol report and ``COMMAND.md`` (command, budget, wall time, machine).
Resumable: rerun the same command after a kill. A user then runs only
``make compare OPTIMIZER=<theirs>`` (:mod:`suite.tune.compare`) against these.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

import yaml

from suite.report.compute.scoring import calibrate_targets
from suite.report.documents.protocol import write as write_report
from suite.report.read.studies import find_studies, run_rows
from suite.tune.space import CONF, SpaceError
from suite.tune.study import tune
from suite.tune.study_config import StudyConfig, StudyError

# The committed budget lives in suite/conf/hparams_search/baselines.yaml (one file says what
# the baselines are); these names are its values, read as plain data.
SPEC = yaml.safe_load((CONF / "hparams_search" / "baselines.yaml").read_text())
TASK_STEPS = {task: int(steps) for task, steps in SPEC["tasks"].items()}
OPTIMIZERS = tuple(SPEC["optimizers"])
BUDGET = dict(SPEC["budget"])
RERUN_SEEDS = tuple(int(s) for s in SPEC["rerun_seeds"])
RUN_OVERRIDES = tuple(SPEC["run_overrides"])
EVAL_OVERRIDES = {task: tuple(o) for task, o in SPEC["eval_overrides"].items()}


def config(task: str, optimizer: str, steps: int, out: Path, trials: int) -> StudyConfig:
    return StudyConfig(
        task=task,
        optimizer=optimizer,
        trials=trials,
        out=out / task / optimizer,
        steps=steps,
        sampler=BUDGET["sampler"],
        sampler_seed=BUDGET["sampler_seed"],
        tune_seed=BUDGET["tune_seed"],
        rerun_seeds=RERUN_SEEDS,
        evals=BUDGET["evals"],
        extra=RUN_OVERRIDES + EVAL_OVERRIDES.get(task, ()),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m suite.tune.baselines", description=__doc__.split("\n\n")[1]
    )
    p.add_argument("--out", type=Path, default=Path("results/baselines"))
    p.add_argument("--tasks", nargs="+", default=list(TASK_STEPS), help="name or name:steps")
    p.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS))
    p.add_argument("--trials", type=int, default=BUDGET["trials"])
    p.add_argument("--report", type=Path, default=None, help="default: <out>/report")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="studies run at once (each run uses threads=1: keep jobs <= cores)",
    )
    a = p.parse_args(argv)
    if a.jobs < 1:
        print(f"error: invalid --jobs {a.jobs} (must be >= 1)", file=sys.stderr)
        return 2
    tasks = {}
    for t in a.tasks:
        name, _, steps = t.partition(":")
        tasks[name] = int(steps) if steps else TASK_STEPS.get(name)
        if tasks[name] is None:
            print(
                f"error: no default steps for task {name!r}; pass {name}:<steps>", file=sys.stderr
            )
            return 2
    configs = [config(t, o, s, a.out, a.trials) for t, s in tasks.items() for o in a.optimizers]
    try:
        for c in configs:  # every input checked before the first run
            c.check()
        start = time.perf_counter()
        with ThreadPoolExecutor(a.jobs) as pool:  # each run is its own process
            for done in as_completed([pool.submit(_tune, c) for c in configs]):
                done.result()
    except (StudyError, SpaceError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    wall = time.perf_counter() - start
    studies = find_studies([a.out / t for t in tasks])
    targets = calibrate_targets(run_rows(studies))
    (a.out / "targets.json").write_text(json.dumps(targets, indent=2) + "\n")
    cmd = "python -m suite.tune.baselines " + shlex.join(sys.argv[1:] if argv is None else argv)
    report = a.report or a.out / "report"
    write_report([a.out / t for t in tasks], report, a.out / "targets.json", None, cmd)
    _command_md(a.out, cmd, tasks, a.optimizers, a.trials, wall, a.jobs, report / "report.md")
    print(f"baselines written to {a.out} in {wall:.0f} s")
    return 0


def _tune(c: StudyConfig) -> dict:
    def log(line: str) -> None:
        print(f"[{c.task}/{c.optimizer}] {line}", flush=True)

    log("start")
    return tune(c, log=log)


def _command_md(
    out: Path,
    cmd: str,
    tasks: dict,
    optimizers,
    trials: int,
    wall: float,
    jobs: int,
    report_name: Path,
) -> None:
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    import torch

    lines = [
        "# Committed baselines",
        "",
        "Made with:",
        "",
        "```bash",
        "make baselines   # = " + cmd,
        "```",
        "",
        f"- budget: {trials} trials per optimizer and workload ({BUDGET['sampler']} search, "
        f"sampler seed {BUDGET['sampler_seed']}, every trial at training seed {BUDGET['tune_seed']}), "
        f"{BUDGET['evals']} evaluations per run, reruns at seeds {', '.join(map(str, RERUN_SEEDS))}; "
        f"run overrides: {' '.join(RUN_OVERRIDES)}; {jobs} studies at a time",
        "- evaluation sets: "
        + "; ".join(f"{t} {' '.join(EVAL_OVERRIDES.get(t, ()))}" for t in tasks),
        "- steps per run: " + ", ".join(f"{t} {s}" for t, s in tasks.items()),
        "- optimizers: " + ", ".join(optimizers),
        f"- wall time of this invocation: {wall:.0f} s ({wall / 3600:.2f} h); a resumed "
        "invocation counts only what it ran",
        f"- machine: {platform.node()} {platform.machine()}, {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads available",
        f"- git: {sha}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- targets: `targets.json` (procedure inside); report: `{report_name}`",
        "",
        "Compare your optimizer against these with the same budget:",
        "`make compare OPTIMIZER=<name> OUT=<folder>`.",
    ]
    (out / "COMMAND.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
