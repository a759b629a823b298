"""Every task in TASKS: builds small, trains a step, evaluates, and is deterministic."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

import pytest
import torch

from suite.data import catalog
from suite.tasks import TASKS, Task, build_task, task_arguments

# Small sizes so each task builds and steps in well under a second.
SMALL = {
    "cnn": dict(dataset="digits", width=8, batch_size=16, eval_train_size=200),
    "vit": dict(
        dataset="digits", embed_dim=16, depth=1, num_heads=2, batch_size=16, eval_train_size=200
    ),
    "lm": dict(
        dataset="tinyshakespeare",
        n_layer=1,
        n_head=2,
        n_embd=16,
        block_size=16,
        batch_size=4,
        eval_windows=8,
        eval_batch_size=4,
    ),
    "deepobs": dict(dataset="fashion_mnist", arch="mlp", batch_size=16, eval_train_size=200),
    "toy": dict(dim=8, n_train=256, n_val=64, n_test=64, batch_size=32),
}
REAL_DATA = {"deepobs"}  # read the real dataset from the data root ($OPTBENCH_DATA)
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40


@pytest.fixture
def small_root(monkeypatch, tmp_path):
    """A data root with a small stand-in for Tiny Shakespeare (its checksum swapped in)."""
    path = tmp_path / "tinyshakespeare/input.txt"
    path.parent.mkdir(parents=True)
    path.write_text(TEXT)
    spec = catalog.TINYSHAKESPEARE
    files = (replace(spec.files[0], checksum=hashlib.sha256(path.read_bytes()).hexdigest()),)
    monkeypatch.setitem(catalog.SPECS, "tinyshakespeare", replace(spec, files=files, urls=()))
    return tmp_path


def make(name: str, root) -> Task:
    kwargs = dict(SMALL[name])
    if "data_root" in task_arguments(name) and name not in REAL_DATA:
        kwargs["data_root"] = root
    return build_task(name, **kwargs)


def test_small_sizes_cover_every_task():
    assert set(SMALL) == set(TASKS)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_builds_steps_and_evaluates(name, small_root):
    task = make(name, small_root)
    assert task.name and task.default_steps >= 1
    assert task.target.direction in ("min", "max")
    torch.manual_seed(0)
    model = task.build_model()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(task.param_groups(model, weight_decay=0.1), lr=0.1)
    loss = task.loss(model, task.batch(seed=0, step=0))
    assert loss.ndim == 0 and math.isfinite(loss.item())
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))

    model.train()
    metrics = task.evaluate(model)
    assert model.training  # train mode restored
    assert {"train/loss", "val/loss", "test/loss"} <= set(metrics)
    assert {k.split("/")[0] for k in metrics} == {"train", "val", "test"}
    assert task.target.metric in metrics and task.target.metric.startswith("val/")
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    model.eval()
    assert task.evaluate(model) == metrics and not model.training  # eval is deterministic


@pytest.mark.parametrize("name", sorted(TASKS))
def test_val_metrics_are_what_evaluate_returns_on_val(name, small_root):
    """A task config's target may name only these (Target.from_config refuses others)."""
    task = make(name, small_root)
    metrics = task.evaluate(task.build_model())
    assert sorted(task.val_metrics) == sorted(k for k in metrics if k.startswith("val/"))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_is_deterministic(name, small_root):
    task = make(name, small_root)
    a, b = task.batch(3, 5), task.batch(3, 5)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(
        torch.equal(x, y) for x, y in zip(task.batch(3, 5), task.batch(4, 5), strict=True)
    )
    assert not all(
        torch.equal(x, y) for x, y in zip(task.batch(3, 5), task.batch(3, 6), strict=True)
    )
    it = task.train_batches(3, start_step=5)
    assert all(torch.equal(x, y) for x, y in zip(next(it), a, strict=True))

    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        model = task.build_model()
        losses.append(task.loss(model, task.batch(0, 0)).item())
    assert losses[0] == losses[1]  # bit for bit on CPU


def test_param_groups_split_decay():
    task = build_task("toy", **SMALL["toy"])
    groups = task.param_groups(task.build_model(), 0.5)
    assert [g["weight_decay"] for g in groups] == [0.5, 0.0]
    assert [p.ndim for p in groups[0]["params"]] == [2] and [
        p.ndim for p in groups[1]["params"]
    ] == [1]


def test_build_task_rejects_unknown_names_and_arguments():
    with pytest.raises(ValueError) as e:
        build_task("resnet50")
    assert "\n" not in str(e.value) and all(n in str(e.value) for n in TASKS)
    with pytest.raises(ValueError) as e:
        build_task("toy", dim=4, widht=3)
    assert "widht" in str(e.value) and "dim" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("toy", dict(batch_size=0), "batch_size"),
        ("toy", dict(num_classes=1), "num_classes"),
        ("cnn", dict(width=7), "width"),
        ("cnn", dict(layers=(1, 1)), "layers"),
        ("cnn", dict(dataset="imagenet"), "imagenet"),
        ("vit", dict(embed_dim=30, num_heads=4), "embed_dim"),
        ("vit", dict(patch_size=3), "patch_size"),
        ("vit", dict(drop_path=1.0), "drop_path"),
        ("cnn", dict(batch_size=5000), "batch_size"),
        ("lm", dict(dataset="tinyshakespeare", n_embd=30, n_head=4), "n_embd"),
        ("lm", dict(dataset="tinyshakespeare", tokenizer="word"), "tokenizer"),
    ],
)
def test_bad_arguments_are_one_line_errors(name, kwargs, match, small_root):
    if "data_root" in task_arguments(name):
        kwargs = {**kwargs, "data_root": small_root}
    with pytest.raises(ValueError, match=match) as e:
        build_task(name, **kwargs)
    assert "\n" not in str(e.value)
