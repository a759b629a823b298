"""Config composition: every group option composes, and conf/optimizer agrees with the registry."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from suite.optim.registry import REGISTRY
from suite.tasks import TASKS

CONF = Path(__file__).resolve().parent.parent / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_optimizer_configs_match_registry_one_to_one():
    assert options("optimizer") == sorted(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_optimizer_config_builds_what_registry_says(name):
    cfg = composed(f"optimizer={name}").optimizer
    spec = REGISTRY[name]
    assert hydra.utils.get_class(cfg._target_) is spec.cls()
    assert cfg._partial_ is True
    for key, value in spec.fixed.items():
        assert cfg[key] == value, f"{name}: config must fix {key}={value}"


@pytest.mark.parametrize("group", ["task", "schedule", "logger", "experiment"])
def test_every_group_option_composes(group):
    names = options(group)
    if group != "experiment":
        assert names, f"conf/{group} is empty"
    for name in names:
        cfg = composed(f"{group}={name}")
        OmegaConf.to_container(cfg, resolve=False)  # every key is there and well formed


@pytest.mark.parametrize("name", options("task"))
def test_task_configs_name_a_registered_task(name):
    cfg = composed(f"task={name}")
    assert cfg.task.name in TASKS


def test_defaults():
    cfg = composed()
    assert cfg.optimizer.lr == 1e-3 and list(cfg.optimizer.betas) == [0.9, 0.999]
    assert cfg.optimizer.eps == 1e-8 and cfg.optimizer.weight_decay == 0.01
    assert cfg.logger.mode == "auto" and "experiment" not in cfg


@pytest.mark.parametrize(
    "launcher", ["basic", "joblib", "submitit_local", "submitit_slurm", "slurm"]
)
def test_launchers_compose(launcher):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True
        )
    target = cfg.hydra.launcher._target_
    assert target.startswith("hydra"), target
    if launcher == "slurm":
        assert "SlurmLauncher" in target and cfg.hydra.launcher.array_parallelism == 64
