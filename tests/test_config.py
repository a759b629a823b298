"""Config composition: every group option composes, and conf/optimizer agrees with the registry."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
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


def test_the_registry_is_the_optimizer_config_group():
    # every file is an entry; `custom` leaves its _target_ to the command line
    assert options("optimizer") == sorted([*REGISTRY, "custom"])


@pytest.mark.parametrize("name", [*sorted(REGISTRY), "custom"])
def test_optimizer_config_says_what_it_is_before_its_target(name):
    lines = (CONF / "optimizer" / f"{name}.yaml").read_text().splitlines()
    assert lines[0].startswith("#") and lines[1] == "_entry_:", name
    keys = [line.split(":")[0] for line in lines if line and not line[0].isspace()]
    assert keys.index("_entry_") < keys.index("_target_"), name


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_optimizer_config_builds_what_registry_says(name):
    cfg = composed(f"optimizer={name}").optimizer
    spec = REGISTRY[name]
    assert hydra.utils.get_class(cfg._target_) is spec.cls()
    assert issubclass(spec.cls(), torch.optim.Optimizer)
    assert cfg._partial_ is True
    for key in cfg._entry_.get("fixed") or ():  # a fixed key the file sets is held fixed
        if key in cfg:
            assert spec.fixed[key] == cfg[key] and key not in spec.hyper, name


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
