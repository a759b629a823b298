"""Each conf/task/*.yaml says what its workload is: model and batch sizes, budget and val
target live there only.

A Hydra run reads them from its composed config (task_from_config); a task built in Python
without them reads the same file (suite/tasks/workloads.py). Real Hydra compose, real tasks.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from suite.data.root import resolve_root
from suite.run import loop_config
from suite.tasks import TASKS, Target, build_task, task_arguments, task_from_config
from suite.tasks.workloads import TASK_CONF, fill, task_configs, workload

CONF = Path(__file__).resolve().parent.parent / "suite" / "conf"
STEMS = sorted(p.stem for p in (CONF / "task").glob("*.yaml"))
BUDGET = {"deepobs": "epochs"}  # DeepOBS states its budget in epochs, as DeepOBS does
# The model and batch sizes each task family's config files state (the model of a DeepOBS
# problem is fixed by its arch).
SIZES = {
    "cnn": ("width", "layers", "batch_size"),
    "vit": ("embed_dim", "depth", "num_heads", "mlp_ratio", "patch_size", "drop_path", "batch_size"),
    "lm": ("n_layer", "n_embd", "n_head", "block_size", "dropout", "vocab_size", "batch_size"),
    "deepobs": ("batch_size",),
    "toy": ("dim", "num_classes", "condition", "signal", "n_train", "n_val", "n_test", "data_seed",
            "batch_size"),
}  # fmt: skip
IDENTITY = ("dataset", "arch")  # which file a task built in Python reads


def composed_task(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return cfg


def test_the_loader_reads_the_shipped_task_configs():
    assert TASK_CONF == CONF / "task" and sorted(task_configs()) == STEMS


@pytest.mark.parametrize("stem", STEMS)
def test_every_task_config_states_its_budget_and_target(stem):
    task = OmegaConf.to_container(composed_task(f"task={stem}").task, resolve=True)
    name = task["name"]
    budget = BUDGET.get(name, "steps")
    assert isinstance(task[budget], int) and task[budget] >= 1, stem
    if name == "toy":  # the target is a fraction of the val split's Bayes accuracy
        assert 0 < task["target_of_bayes"] <= 1
    else:
        metrics = TASKS[name].val_metrics
        assert Target.from_config(task["target"], metrics).metric.startswith("val/"), stem
    # every key is an argument of the task's constructor, so the run passes it on
    assert set(task) - {"name"} <= set(task_arguments(name)), stem
    # and the file is the one a task built in Python without these values reads
    identity = {k: task[k] for k in ("dataset", "arch") if k in task}
    assert workload(name, **identity) == (stem, task)


def test_a_budget_or_target_override_reaches_the_task_and_the_loop():
    cfg = composed_task("task=toy", "task.steps=7", "task.target_of_bayes=0.5")
    task = task_from_config(OmegaConf.to_container(cfg.task, resolve=True))
    assert task.default_steps == 7 and loop_config(cfg, task.default_steps).steps == 7
    assert task.target.value == round(0.5 * task.bayes_acc, 3)
    full = task_from_config(OmegaConf.to_container(composed_task("task=toy").task))
    assert full.default_steps == 1000 and full.target.value == round(0.95 * full.bayes_acc, 3)


def test_values_given_win_over_the_file_and_none_reads_it():
    target = {"metric": "val/acc", "value": 0.5, "direction": "max"}
    given = fill("cnn", {"dataset": "nowhere"}, steps=3, target=target)  # no file is read
    assert given == {"steps": 3, "target": target}
    read = fill("vit", {"dataset": "digits"}, steps=None, target=target, patch_size=None)
    assert read == {"steps": 600, "target": target, "patch_size": 2}


@pytest.mark.parametrize(
    "target, match",
    [
        ({"metric": "val/accuracy", "value": 0.9, "direction": "max"}, "val/accuracy"),
        ({"metric": "test/acc", "value": 0.9, "direction": "max"}, "test/acc"),
        ({"metric": "val/acc", "value": 0.9, "direction": "up"}, "'up'; valid: max, min"),
        ({"metric": "val/acc", "value": "high", "direction": "max"}, "'high'"),
        ({"metric": "val/acc", "value": True, "direction": "max"}, "True"),
        ({"metric": "val/acc", "value": 0.9}, "exactly metric, value, direction"),
        (0.9, "exactly metric, value, direction"),
    ],
)
def test_a_bad_target_is_refused_in_one_line(target, match):
    with pytest.raises(ValueError, match=match) as e:
        Target.from_config(target, ("val/loss", "val/acc"))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0), "invalid task.steps 0"),
        (dict(steps=2.5), "invalid task.steps 2.5"),
        (dict(target_of_bayes=1.5), "target_of_bayes must be in"),
        (dict(target_of_bayes="x"), "target_of_bayes must be in"),
    ],
)
def test_a_bad_budget_is_refused_in_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as e:
        build_task("toy", dim=4, n_train=64, n_val=16, n_test=16, batch_size=8, **kwargs)
    assert "\n" not in str(e.value)


def test_no_task_config_or_several_is_one_line():
    with pytest.raises(ValueError, match="0 task configs .* name=cnn, dataset=imagenet") as e:
        workload("cnn", dataset="imagenet")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="4 task configs .* name=cnn .*cnn_digits") as e:
        workload("cnn")
    assert "\n" not in str(e.value)


def test_augmentation_comes_from_the_file_and_bad_values_are_one_line():
    small = dict(dataset="digits", width=8, batch_size=16, eval_train_size=50)
    assert (build_task("cnn", **small).crop_pad, build_task("cnn", **small).hflip) == (0, False)
    task = build_task("cnn", **small, crop_pad=1, hflip=True)
    assert (task.crop_pad, task.hflip) == (1, True)
    off = build_task("cnn", **small, augment=False, crop_pad=1, hflip=True)
    assert (off.crop_pad, off.hflip) == (0, False)  # augment=False: neither
    for bad, match in ((dict(crop_pad=-1), "crop_pad must be"), (dict(hflip="yes"), "hflip must")):
        with pytest.raises(ValueError, match=match) as e:
            build_task("cnn", **small, **bad)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("stem", STEMS)
def test_every_task_config_states_its_sizes_and_the_class_has_no_second_value(stem):
    task = OmegaConf.to_container(composed_task(f"task={stem}").task, resolve=True)
    name = task["name"]
    missing = [k for k in SIZES[name] if task.get(k) is None]
    assert not missing, f"{stem}.yaml sets no {missing}"
    params = inspect.signature(TASKS[name].__init__).parameters
    doubled = [k for k in task if k not in ("name", *IDENTITY) and params[k].default is not None]
    assert not doubled, f"{TASKS[name].__name__} also defaults {doubled} (set them in YAML only)"


def _shape(task, name: str) -> dict:
    """What a task trains: its model's parameter shapes, its sizes (those it keeps), batch
    size, budget and target."""
    model = task.build_model()
    return {
        "parameters": [(n, tuple(p.shape)) for n, p in model.named_parameters()],
        "sizes": {k: getattr(task, k) for k in SIZES[name] if hasattr(task, k)},
        "batch_size": task.batch_size,
        "steps": task.default_steps,
        "target": task.target,
    }


# Loading MNIST, Fashion-MNIST or Brown takes ~3 s a build here, twice per test: slow;
# digits, Tiny Shakespeare and toy cover the cnn, vit, lm and toy classes in the default run.
FAST_DATA = ("digits", "tinyshakespeare", None)
BUILDS = [
    pytest.param(stem, marks=() if cfg.get("dataset") in FAST_DATA else pytest.mark.slow)
    for stem, cfg in task_configs().items()
]


@pytest.mark.parametrize("stem", BUILDS)
def test_a_hydra_run_and_python_build_the_same_task(stem):
    """``task=<stem>`` (the composed file's keys passed on) and ``build_task(name, dataset=...)``
    (the constructor reading the file) build the same model at the same batch size."""
    task = OmegaConf.to_container(composed_task(f"task={stem}").task, resolve=True)
    dataset = task.get("dataset")
    if dataset in ("cifar10", "wikitext2") and not (resolve_root() / dataset).is_dir():
        pytest.skip(f"{dataset} not under {resolve_root()}")
    identity = {k: task[k] for k in IDENTITY if k in task}
    hydra_task, python_task = task_from_config(task), build_task(task["name"], **identity)
    hydra, python = _shape(hydra_task, task["name"]), _shape(python_task, task["name"])
    assert hydra == python
    assert hydra["batch_size"] == task["batch_size"] and len(hydra["parameters"]) > 0


def test_a_size_override_reaches_the_model():
    """The campaign's ``++task.<key>=`` (and a plain ``task.<key>=``) set a size the file has."""
    for prefix in ("task.", "++task."):
        cfg = composed_task("task=cnn_digits", f"{prefix}width=8", f"{prefix}batch_size=16")
        task = task_from_config(OmegaConf.to_container(cfg.task, resolve=True))
        assert (task.width, task.batch_size) == (8, 16)
        conv = task.build_model().conv1.weight
        assert conv.shape[0] == 8
