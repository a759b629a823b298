"""``python -m suite.tune --task T --optimizer O --trials K [--steps N] [--out DIR] ...``

Tunes one optimizer on one task with the fair-comparison protocol (see
:mod:`suite.tune.study`) and writes ``study.json``, ``selected.yaml`` and every
run's record under ``--out``. Rerunning the same command resumes the study.
Anything after ``--`` is passed to every run as a Hydra override (e.g. ``threads=1``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from suite.tune.space import SpaceError
from suite.tune.study import tune
from suite.tune.study_config import SAMPLERS, StudyConfig, StudyError


def parse(argv: list[str] | None) -> StudyConfig:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser(prog="python -m suite.tune", description=__doc__.split("\n\n")[1])
    p.add_argument("--task", required=True)
    p.add_argument("--optimizer", required=True)
    p.add_argument("--trials", type=int, required=True, help="complete trials in the study")
    p.add_argument("--steps", type=int, default=None, help="steps per run (default: the task's)")
    p.add_argument("--out", type=Path, default=None, help="default runs/tune/<task>/<optimizer>")
    p.add_argument("--storage", default=None, help="Optuna RDB URL (default sqlite in --out)")
    p.add_argument("--sampler", default="sobol", help=f"one of {', '.join(SAMPLERS)}")
    p.add_argument("--sampler-seed", type=int, default=0)
    p.add_argument("--tune-seed", type=int, default=0, help="training seed of every trial")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="rerun seeds (>= 3)")
    p.add_argument("--evals", type=int, default=20, help="evaluations per run")
    p.add_argument("--heartbeat", type=int, default=10, help="seconds between trial heartbeats")
    p.add_argument("--grace", type=int, default=30, help="seconds before a silent trial is stale")
    p.add_argument("--launcher", default=None, help="Hydra launcher per run: joblib, slurm, ...")
    p.add_argument("--no-reruns", action="store_true", help="search only (extra workers)")
    p.add_argument("--config-dir", type=Path, default=None, help="a folder of optimizer/*.yaml")
    a = p.parse_args(argv)
    return StudyConfig(
        task=a.task,
        optimizer=a.optimizer,
        trials=a.trials,
        out=a.out or Path("runs/tune") / a.task / a.optimizer,
        steps=a.steps,
        storage=a.storage,
        sampler=a.sampler,
        sampler_seed=a.sampler_seed,
        tune_seed=a.tune_seed,
        rerun_seeds=tuple(a.seeds),
        evals=a.evals,
        extra=tuple(extra),
        heartbeat_s=a.heartbeat,
        grace_s=a.grace,
        reruns=not a.no_reruns,
        launcher=a.launcher,
        config_dir=a.config_dir,
    )


def main(argv: list[str] | None = None) -> int:
    cfg = parse(argv)
    try:
        result = tune(cfg, log=lambda line: print(line, flush=True))
    except (StudyError, SpaceError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    sel = result["selected"]
    print(f"selected trial {sel['trial']}: {' '.join(sel['overrides'])}; written to {cfg.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
