"""What the image classification tasks (cnn.py, vit.py, deepobs.py) share: data, batches,
loss, eval.

The dataset sits on the task's device as uint8 (N, C, H, W); a batch is indexed
from an epoch permutation of the train split, augmented (random crop with zero
padding; left-right flips for CIFAR-10 only: ``crop_pad`` and ``hflip`` in each task
config) and normalised with the train split's channel statistics. Evaluation covers a
fixed subset of the train split (``train/*``), the val split (``val/*``, what targets and
tuning read) and the official test set (``test/*``).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from suite.data import IMAGE_DATASETS, load_images
from suite.data.batches import epoch_indices, generator, random_crop, random_hflip

from .base import Task
from .workloads import fill


def check_positive(**values: int | None) -> None:
    """One-line ValueError for the first argument that is not >= 1 (None passes)."""
    for k, v in values.items():
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ValueError(f"{k} must be an integer >= 1, got {v!r}")


def check_dataset(dataset: str) -> None:
    """One-line ValueError if ``dataset`` is not an image dataset of the suite."""
    if dataset not in IMAGE_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(IMAGE_DATASETS)}")


def strided(n: int, k: int, device: torch.device) -> torch.Tensor:
    """``k`` evenly strided indices of ``range(n)``: a fixed subset, the same every run."""
    return torch.linspace(0, n - 1, k, device=device).round().long()


class ImageClassification(Task):
    """Base of the image tasks; subclasses set family and build_model, pass the batch size
    and call set_budget with their workload's budget and target (its conf/task file)."""

    family: str
    val_metrics = ("val/loss", "val/acc")

    def __init__(
        self,
        dataset: str,
        batch_size: int,
        augment: bool = True,
        eval_train_size: int | None = 10_000,
        eval_batch_size: int = 1000,
        data_root: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        eval_size: int | None = None,
        crop_pad: int | None = None,
        hflip: bool | None = None,
    ) -> None:
        """With ``augment``: random crops of the image zero-padded by ``crop_pad`` pixels and,
        if ``hflip``, left-right flips, as the workload's conf/task file sets them (None: read
        from that file); without: neither."""
        check_dataset(dataset)
        check_positive(
            batch_size=batch_size,
            eval_train_size=eval_train_size,
            eval_batch_size=eval_batch_size,
            eval_size=eval_size,
        )
        self.dataset = dataset
        self.name = f"{self.family}_{dataset}"
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.data = load_images(dataset, data_root).to(self.device)
        n = len(self.data.train_x)
        if batch_size > n:
            raise ValueError(
                f"batch_size {batch_size} exceeds the {n} training images of {dataset}"
            )
        self.crop_pad, self.hflip = 0, False
        if augment:
            w = fill(self.family, {"dataset": dataset}, crop_pad=crop_pad, hflip=hflip)
            if type(w["crop_pad"]) is not int or w["crop_pad"] < 0:
                raise ValueError(f"crop_pad must be an integer >= 0, got {w['crop_pad']!r}")
            if type(w["hflip"]) is not bool:
                raise ValueError(f"hflip must be true or false, got {w['hflip']!r}")
            self.crop_pad, self.hflip = w["crop_pad"], w["hflip"]
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(self.data.mean, device=self.device).view(shape)
        self.std = torch.tensor(self.data.std, device=self.device).view(shape)
        # A fixed, evenly strided subset of the train split for train/* metrics.
        k = n if eval_train_size is None else min(eval_train_size, n)
        self.eval_train_idx = strided(n, k, self.device)
        # eval_size (smoke budgets only): val/* and test/* on a fixed strided subset of each.
        self.eval_idx = {
            split: strided(len(x), min(eval_size or len(x), len(x)), self.device)
            for split, x in (("val", self.data.val_x), ("test", self.data.test_x))
        }

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255 - self.mean) / self.std

    def batch(self, seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.data
        idx = epoch_indices(len(d.train_x), self.batch_size, seed, step, self.device)
        x, y = d.train_x[idx], d.train_y[idx]
        if self.crop_pad or self.hflip:
            g = generator(seed, step, self.device, "augment")
            if self.crop_pad:
                x = random_crop(x, self.crop_pad, g)
            if self.hflip:
                x = random_hflip(x, g)
        return self.normalise(x), y

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        d = self.data
        splits = {
            "train": (d.train_x[self.eval_train_idx], d.train_y[self.eval_train_idx]),
            "val": (d.val_x[self.eval_idx["val"]], d.val_y[self.eval_idx["val"]]),
            "test": (d.test_x[self.eval_idx["test"]], d.test_y[self.eval_idx["test"]]),
        }
        was_training = model.training
        model.eval()
        try:
            out = {}
            for split, (xs, ys) in splits.items():
                loss_sum, correct = 0.0, 0
                for i in range(0, len(xs), self.eval_batch_size):
                    x = self.normalise(xs[i : i + self.eval_batch_size])
                    y = ys[i : i + self.eval_batch_size]
                    logits = model(x).float()
                    loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
                    correct += (logits.argmax(-1) == y).sum().item()
                out[f"{split}/loss"] = loss_sum / len(xs)
                out[f"{split}/acc"] = correct / len(xs)
        finally:
            model.train(was_training)
        return out
