"""Config composition: every group option composes, and conf/optimizer agrees with the registry."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from suite.optim import entry
from suite.optim.registry import REGISTRY
from suite.runner import command_line, schema
from suite.tasks import TASKS

CONF = Path(__file__).resolve().parent.parent / "suite" / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def checked(*overrides: str) -> schema.Checked:
    """The run's one checking pass on the config ``python -m suite.run *overrides`` composes."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    task, optimizer = choices.task, choices.optimizer
    with open_dict(cfg):
        del cfg["hydra"]
    return schema.check(cfg, task, optimizer, overrides)


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


@pytest.mark.parametrize("name", options("experiment"))
def test_an_experiment_sets_its_top_level_keys(name):
    """An experiment's top-level values (eval_every, steps, progress, ...) win over
    config.yaml's defaults: `_self_` comes first in the defaults list."""
    own = OmegaConf.load(CONF / "experiment" / f"{name}.yaml")
    cfg = composed(f"experiment={name}")
    keys = [k for k in own if k not in ("defaults", "hydra") and not OmegaConf.is_dict(own[k])]
    assert keys, name
    for key in keys:
        assert cfg[key] == own[key], (name, key)


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


# --- the typed schema: unknown keys and mistyped values refused before any work ---------


@pytest.mark.parametrize(
    "overrides",
    [
        *[(f"optimizer={n}",) for n in sorted(REGISTRY)],
        *[(f"task={n}", "optimizer.weight_decay=0") for n in options("task")],  # DeepOBS fixes 0
        *[(f"experiment={n}",) for n in options("experiment")],
        *[(f"schedule={n}",) for n in options("schedule")],
        ("optimizer._search_={lr:{type:log,low:1.0e-4,high:1.0e-1}}",),  # the suite's own key
    ],
    ids=lambda o: " ".join(o),
)
def test_every_shipped_config_passes_the_schema(overrides):
    checked(*overrides)


@pytest.mark.parametrize(
    "override, named, valid",
    [
        ("+foo=1", "'foo'", "checkpoint_every"),
        ("+schedule.warmup_step=5", "schedule.warmup_step", "warmup_steps"),
        ("+logger.projekt=x", "logger.projekt", "project"),
        ("+data.rot=x", "data.rot", "root"),
        ("+task.dimm=3", "task.dimm", "dim"),
        ("+optimizer.bogus=1", "optimizer.bogus", "weight_decay"),
        ("threads=many", "invalid threads: 'many'", "integer"),
        ("grad_clip=abc", "invalid grad_clip: 'abc'", "number"),
        ("schedule.min_lr_ratio=abc", "schedule.min_lr_ratio", "number"),
    ],
)
def test_unknown_or_mistyped_keys_are_refused_naming_the_valid_ones(override, named, valid):
    with pytest.raises(ValueError) as e:
        checked("task=toy", override)
    message = str(e.value)
    assert named in message and valid in message and "\n" not in message, message


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["task=nope"], "unknown task 'nope'; valid: cnn_cifar10"),
        (["-m", "optimizer=adamw,nope"], "unknown optimizer 'nope'; valid: adam"),
        (["+experiment=nope"], "unknown experiment 'nope'"),
        (["experiment=nope"], "unknown experiment 'nope'"),
        (["-m", "experiment=decoupled_wd"], None),  # the Makefile's exp-* targets
        (["-m", "experiment=decoupled_wd_lm_grid"], None),
        (["-m", "experiment=sgd_vs_adam_cnn", "optimizer=adam", "seed=1,2"], None),
        (["experiment=deepobs_fmnist_2c2d", "optimizer=sgd"], None),
        (["task=../task/toy"], "unknown task '../task/toy'"),
        (["task=toy", "optimizer=adamw,sgd", "seed=0,1"], None),
        (["optimizer=glob(*)"], None),  # left to Hydra
        (["bogus=1"], "unknown key 'bogus'; valid top-level keys: amp, "),
        (["schedule.warmup_step=5"], "unknown key 'schedule.warmup_step'; valid schedule keys"),
        (["hydra.run.dir=x", "optimizer.lr=1", "+optimizer.foo=1"], None),
    ],
)
def test_unknown_group_options_are_named_with_the_valid_ones(argv, problem):
    got = command_line.check_choices(argv)
    assert got == problem if problem is None else problem in got


@pytest.mark.parametrize(
    "override, word",
    [
        ("seed=99999999999999999999", "seed"),
        ("seed=9223372036854775808", "seed"),
        ("schedule.min_lr_ratio=5", "schedule.min_lr_ratio"),
        ("schedule.min_lr_ratio=-0.1", "schedule.min_lr_ratio"),
        ("schedule.warmup_steps=-1", "schedule.warmup_steps"),
    ],
)
def test_out_of_range_values_are_refused(override, word):
    with pytest.raises(ValueError, match=word):
        checked("task=toy", override)


@pytest.mark.parametrize(
    "name", sorted(n for n in REGISTRY if "eps" in OmegaConf.load(CONF / "optimizer" / f"{n}.yaml"))
)
def test_eps_zero_is_refused_for_adam_family_with_the_reason(name):
    cfg = composed(f"optimizer={name}", "optimizer.eps=0")
    with pytest.raises(ValueError, match=r"optimizer\.eps: 0 .*0/0 = NaN"):
        entry.check_hparams(dict(cfg.optimizer))
    entry.check_hparams({"eps": 1e-8})


@pytest.mark.parametrize("profile", options("bench"))
def test_every_bench_profile_task_override_composes(profile):
    """What `make bench` passes to each task's sweep must compose (e.g. `+task.x` for a key
    the task's config file does not set)."""
    spec = OmegaConf.load(CONF / "bench" / f"{profile}.yaml")
    if spec.get("protocol") == "tuned":  # the CPU reference is the committed baselines' budget
        from suite.tune import baselines

        assert list(spec.tasks) == list(baselines.TASK_STEPS)
        assert list(spec.optimizers) == list(baselines.OPTIMIZERS)
        assert int(spec.jobs) * int(baselines.RUN_OVERRIDES[0].split("=")[1]) <= 2  # CI cores
        for task in spec.tasks:
            for opt in spec.optimizers:
                baselines.config(task, opt, baselines.TASK_STEPS[task], Path("x"), 2).check()
        return
    for task, overrides in spec.tasks.items():
        checked(f"task={task}", *[f"{k}={v}" for k, v in (overrides or {}).items()])
