"""A benchmark tier as ``suite/conf/protocol/<name>.yaml`` states it, checked before any
work: the reference, the optimizers, the workloads and their budgets, the studies' size
and seeds, the rerun and target seeds (:mod:`suite.tune.campaign` runs it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from suite.tune.space import CONF, SpaceError
from suite.tune.study_config import StudyConfig, StudyError


def read_protocol(name: str, conf: Path = CONF) -> dict[str, Any]:
    """The mapping in ``conf/protocol/<name>.yaml``; StudyError naming the valid ones."""
    path = conf / "protocol" / f"{name}.yaml"
    if not path.is_file():
        valid = sorted(p.stem for p in (conf / "protocol").glob("*.yaml"))
        raise StudyError(f"unknown protocol {name!r}; valid: {', '.join(valid)}")
    return yaml.safe_load(path.read_text())


@dataclass(frozen=True)
class Protocol:
    """A tier as ``suite/conf/protocol/<name>.yaml`` states it (see that file)."""

    name: str
    out: Path
    reference: str
    studies: int
    trials_per_study: int
    sampler: str
    study_seed_base: int
    rerun_seeds: tuple[int, ...]
    target_seeds: tuple[int, ...]
    evals: int
    run_overrides: tuple[str, ...]
    optimizers: tuple[str, ...]
    workloads: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, conf: Path = CONF) -> Protocol:
        p = cls.from_mapping(name, read_protocol(name, conf))
        p.check(conf)
        return p

    @classmethod
    def from_mapping(cls, name: str, raw: dict[str, Any]) -> Protocol:
        if "select_from" in raw:
            raise StudyError(
                f"protocol {name!r} tunes nothing (it reruns {raw['select_from']}'s choices): "
                "run it with python -m suite.tune.transfer (make bench PROFILE=gpu)"
            )
        return cls(
            name=name,
            out=Path(raw["out"]),
            reference=raw["reference"],
            studies=int(raw["studies"]),
            trials_per_study=int(raw["trials_per_study"]),
            sampler=raw["sampler"],
            study_seed_base=int(raw["study_seed_base"]),
            rerun_seeds=tuple(int(s) for s in raw["rerun_seeds"]),
            target_seeds=tuple(int(s) for s in raw["target_seeds"]),
            evals=int(raw["evals"]),
            run_overrides=tuple(raw["run_overrides"]),
            optimizers=tuple(raw["optimizers"]),
            workloads=dict(raw["workloads"]),
        )

    def check(self, conf: Path = CONF) -> None:
        """Every name and number, before any work: one line naming what is wrong."""
        if self.reference not in self.optimizers:
            raise StudyError(f"reference {self.reference!r} is not among the optimizers")
        if self.studies < 3:
            raise StudyError(f"invalid studies: {self.studies} (need >= 3 independent studies)")
        seeds = (*self.rerun_seeds, *self.target_seeds)
        if len(set(seeds)) != len(seeds) or len(self.target_seeds) < 5:
            raise StudyError("rerun and target seeds must be distinct, with >= 5 target seeds")
        study_seeds = {self.study_seed_base + k for k in range(self.studies)}
        if study_seeds & set(seeds):
            raise StudyError("the studies' training seeds overlap the rerun or target seeds")
        for task, w in self.workloads.items():
            if not {"kind", "steps"} <= set(w):
                raise StudyError(f"workload {task!r} needs kind and steps")
        for task in self.workloads:
            for opt in self.optimizers:
                try:
                    self.study(task, opt, 0).check()
                except SpaceError as e:
                    raise StudyError(str(e)) from None

    def study(self, task: str, optimizer: str, k: int) -> StudyConfig:
        w = self.workloads[task]
        return StudyConfig(
            task=task,
            optimizer=optimizer,
            trials=self.trials_per_study,
            out=self.out / task / optimizer / f"study-{k}",
            steps=int(w["steps"]),
            sampler=self.sampler,
            sampler_seed=k,
            tune_seed=self.study_seed_base + k,
            rerun_seeds=self.rerun_seeds,
            evals=self.evals,
            extra=self.run_overrides + tuple(w.get("overrides", ())),
            reruns=False,
        )
