"""What one study is (:class:`StudyConfig`: task, optimizer, budget, seeds, sampler,
launcher, extra run overrides) and the checks that refuse bad input before any work,
including overrides read back from a study's storage or folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from suite import trust
from suite.tune.space import CONF, Param, load_config, load_space

SAMPLERS = ("sobol", "tpe", "random")
PLUGIN_LAUNCHERS = (
    "basic",
    "joblib",
    "submitit_local",
    "submitit_slurm",
)  # installed with the suite


class StudyError(ValueError):
    """Bad input or a study that cannot go on; one line, exit code 2."""


# Top-level run keys a study's extra overrides may set (the study sets task, optimizer,
# seed, steps; resume is the run's own business).
EXTRA_TOP_KEYS = (
    "amp", "checkpoint_every", "data", "device", "eval_every", "grad_clip", "log_every",
    "logger", "progress", "schedule", "telemetry_every", "threads",
)  # fmt: skip


@dataclass
class StudyConfig:
    task: str
    optimizer: str
    trials: int
    out: Path
    steps: int | None = None
    storage: str | None = None  # None: sqlite:///<out>/study.db
    sampler: str = "sobol"
    sampler_seed: int = 0
    tune_seed: int = 0  # the training seed of every trial
    rerun_seeds: tuple[int, ...] = (1, 2, 3)
    evals: int = 20  # evaluations per run (time to target is measured at evaluations)
    extra: tuple[str, ...] = ()  # further Hydra overrides for every run, e.g. threads=1
    heartbeat_s: int = 10
    grace_s: int = 30
    reruns: bool = True
    launcher: str | None = None  # a Hydra launcher for each run (joblib, slurm, ...); None: local
    conf: Path = field(default=CONF)
    config_dir: Path | None = None  # a user's folder of optimizer/*.yaml, on hydra.searchpath

    @property
    def optimizer_conf(self) -> Path:
        """Where the optimizer's entry lives: the user's folder if it holds it, else conf."""
        if self.config_dir and (self.config_dir / "optimizer" / f"{self.optimizer}.yaml").is_file():
            return self.config_dir
        return self.conf

    def check(self) -> list[Param]:
        """Refuse bad input before any work; returns the search space."""
        tasks = sorted(p.stem for p in (self.conf / "task").glob("*.yaml"))
        if self.task not in tasks:
            raise StudyError(f"unknown task {self.task!r}; valid: {', '.join(tasks)}")
        space = load_space(self.optimizer, self.optimizer_conf)
        if self.trials < 1:
            raise StudyError(f"invalid trials: {self.trials} (must be >= 1)")
        if self.steps is not None and self.steps < 1:
            raise StudyError(f"invalid steps: {self.steps} (must be >= 1)")
        if self.sampler not in SAMPLERS:
            raise StudyError(f"unknown sampler {self.sampler!r}; valid: {', '.join(SAMPLERS)}")
        seeds = self.rerun_seeds
        if len(set(seeds)) < 3 or self.tune_seed in seeds or any(s < 0 for s in seeds):
            raise StudyError(
                f"invalid rerun seeds {list(seeds)}: need >= 3 distinct seeds >= 0, "
                f"none equal to the tuning seed {self.tune_seed}"
            )
        launchers = sorted(
            {
                *PLUGIN_LAUNCHERS,
                *(p.stem for p in (self.conf / "hydra" / "launcher").glob("*.yaml")),
            }
        )
        if self.launcher is not None and self.launcher not in launchers:
            raise StudyError(f"unknown launcher {self.launcher!r}; valid: {', '.join(launchers)}")
        if self.evals < 1:
            raise StudyError(f"invalid evals: {self.evals} (must be >= 1)")
        for o in self.extra:
            key = o.split("=", 1)[0].lstrip("+~")
            if key in ("task", "optimizer", "seed", "steps") or key.startswith("hydra."):
                raise StudyError(f"override {o!r} is set by the study; pass it as an option")
        try:  # extra may come from a baseline's study.json: only keys a run accepts, plain values
            trust.check_overrides(self.extra, self.accepts_extra, "extra", self.extra_keys())
        except ValueError as e:
            raise StudyError(str(e)) from None
        fixed = self.fixed_hparams()
        return [p for p in space if p.path.split(".")[0] not in fixed]

    def _task_name(self) -> str:
        return yaml.safe_load((self.conf / "task" / f"{self.task}.yaml").read_text())["name"]

    def accepts_extra(self, key: str) -> bool:
        """Whether a run of this task takes ``key`` (top-level run keys but those the study
        sets, the task's arguments, schedule/logger/data fields) as an extra override."""
        from dataclasses import fields

        from suite.runner import schema
        from suite.tasks import TASKS, task_arguments

        top, _, rest = key.partition(".")
        if not rest:
            return top in EXTRA_TOP_KEYS
        if top == "task":
            return self._task_name() in TASKS and rest in task_arguments(self._task_name())
        groups = {"schedule": schema.Schedule, "logger": schema.Logger, "data": schema.Data}
        return top in groups and rest in {f.name for f in fields(groups[top])}

    def extra_keys(self) -> str:
        return (
            f"valid: {', '.join(EXTRA_TOP_KEYS)}, task.<argument of {self.task}>, "
            "schedule.*, logger.*, data.root, with plain values"
        )

    def fixed_hparams(self) -> dict[str, Any]:
        """The optimizer hyperparameters the task fixes (``Task.fixed_hparams``, e.g. no
        weight decay on DeepOBS's problems) that this optimizer's config holds: left out of
        the search, passed as they are to every trial and rerun."""
        from suite.tasks import TASKS

        name = self._task_name()
        base = load_config(self.optimizer, self.optimizer_conf)
        fixed = TASKS[name].fixed_hparams if name in TASKS else {}
        return {k: v for k, v in fixed.items() if k in base}

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.out / 'study.db').resolve()}"

    @property
    def name(self) -> str:
        return f"{self.task}.{self.optimizer}"

    def budget(self) -> dict[str, Any]:
        """What every optimizer of a comparison must share (checked when a study resumes)."""
        return {
            "task": self.task,
            "steps": self.steps,
            "evals": self.evals,
            "sampler": self.sampler,
            "sampler_seed": self.sampler_seed,
            "tune_seed": self.tune_seed,
            "extra": list(self.extra),
        }


def check_optimizer_overrides(
    cfg: StudyConfig, overrides: list[str], what: str, source: str
) -> list[str]:
    """``overrides`` read from ``source`` (a study's storage or folder) set only this
    optimizer's hyperparameters to plain values; StudyError naming ``source`` otherwise."""
    keys = {
        f"optimizer.{k}"
        for k in load_config(cfg.optimizer, cfg.optimizer_conf)
        if not k.startswith("_")
    }
    try:
        trust.check_overrides(
            overrides,
            keys.__contains__,
            what,
            f"valid: {', '.join(sorted(keys))}, with plain values",
        )
    except ValueError as e:
        raise StudyError(f"{source}: {e}") from None
    return overrides
