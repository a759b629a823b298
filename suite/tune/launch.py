"""One run of a study, a campaign or a transfer tier to its end: the ``python -m suite.run``
command line, launched from the warm fork server (:mod:`suite.tune.warm`) or through a
Hydra launcher plugin, and whether a run folder holds a record that ended."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from suite.record import read_summary
from suite.tune import warm, workers
from suite.tune.study_config import StudyConfig, StudyError

FINISHED = ("ok", "diverged", "failed")


class RunCrashed(RuntimeError):
    """A trial's run ended without a summary (killed, out of memory): the trial fails, the study goes on."""


def run_command(cfg: StudyConfig, seed: int, run_overrides: list[str], run_dir: Path) -> list[str]:
    """The ``python -m suite.run`` command line of one trial or rerun."""
    cmd = [sys.executable, "-m", "suite.run", f"task={cfg.task}", f"optimizer={cfg.optimizer}"]
    cmd.append(f"seed={seed}")
    if cfg.steps is not None:
        cmd += [f"steps={cfg.steps}", f"eval_every={max(1, cfg.steps // cfg.evals)}"]
    keys = {o.split("=", 1)[0] for o in cfg.extra}
    cmd += [d for d in ("logger=none", "progress=none") if d.split("=")[0] not in keys]
    cmd += [*run_overrides, *cfg.extra]
    if cfg.config_dir is not None:  # the user's entries, for this run as for the study
        cmd.append(f"hydra.searchpath=[file://{cfg.config_dir.resolve()}]")
    if cfg.launcher is None:
        return cmd + [f"hydra.run.dir={run_dir}"]
    # one job through a Hydra launcher (e.g. a Slurm array of one), written to run_dir itself
    cmd.insert(3, "-m")
    return cmd + [
        f"hydra/launcher={cfg.launcher}",
        f"hydra.sweep.dir={run_dir}",
        "hydra.sweep.subdir=.",
    ]


def launch(cfg: StudyConfig, seed: int, run_overrides: list[str], run_dir: Path) -> dict:
    """Run one record to its end; its summary. StudyError on bad input (exit 2)."""
    if run_dir.exists():
        raise StudyError(f"{run_dir} already exists; nothing was overwritten")
    cmd = run_command(cfg, seed, run_overrides, run_dir)
    log = cfg.out / "logs" / f"{run_dir.parent.name}_{run_dir.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:  # appended: a killed run's log stays above its seed's rerun
        f.write(" ".join(cmd) + "\n")
    if cfg.launcher is None:  # forked from a warm fork server: no interpreter start, no imports
        returncode = warm.run(cmd[3:], log)
    else:  # through a Hydra launcher plugin; the run dies with this process, no orphan trains on
        with open(log, "a") as f:
            returncode = subprocess.run(
                cmd, stdout=f, stderr=subprocess.STDOUT, preexec_fn=workers.die_with_parent
            ).returncode
    if returncode == 2:
        last = log.read_text().strip().splitlines()[-1]
        raise StudyError(f"a run refused its input ({last}); log: {log}")
    if not (run_dir / "summary.json").is_file():
        raise RunCrashed(f"{run_dir}: exit {returncode} without a summary; log: {log}")
    return read_summary(run_dir)


def finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a record that ended (ok, diverged or failed)."""
    try:
        return read_summary(run_dir)["status"] in FINISHED
    except (OSError, ValueError):
        return False


def run_or_reuse(cfg: StudyConfig, seed: int, overrides: list[str], run_dir: Path) -> dict:
    """One record to its end, or the finished one already there; an unfinished folder is
    kept as ``<name>.killed-<n>`` and the run starts again under the same name."""
    if finished(run_dir):
        return read_summary(run_dir)
    if run_dir.exists():
        n = 1
        while run_dir.with_name(f"{run_dir.name}.killed-{n}").exists():
            n += 1
        os.rename(run_dir, run_dir.with_name(f"{run_dir.name}.killed-{n}"))
    return launch(cfg, seed, overrides, run_dir)
