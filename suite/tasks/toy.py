"""Ill-conditioned softmax regression: a linear model on synthetic data, seconds to run.

Inputs x = (z * s) Q^T with z ~ N(0, I), Q a random rotation and s log-spaced
from 1 down to 1/sqrt(condition), so the input covariance (and the loss
Hessian near the optimum) has condition number about ``condition``, with
no axis-aligned structure for a diagonal preconditioner to exploit. The true
weights W* = Q diag(1/s) G / sqrt(dim) make every direction matter equally;
labels are drawn from softmax(x W* * signal). The data depend only on
``data_seed``, never on the training seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from suite.data.batches import epoch_indices

from .base import Task
from .image import check_positive
from .workloads import fill


class ToyTask(Task):
    name = "toy"
    val_metrics = ("val/loss", "val/acc")

    def __init__(
        self,
        dim: int | None = None,
        num_classes: int | None = None,
        condition: float | None = None,
        signal: float | None = None,
        n_train: int | None = None,
        n_test: int | None = None,
        n_val: int | None = None,
        batch_size: int | None = None,
        data_seed: int | None = None,
        device: str | torch.device = "cpu",
        steps: int | None = None,
        target_of_bayes: float | None = None,
    ) -> None:
        """The problem (``dim``, ``num_classes``, ``condition``, ``signal``, the split sizes,
        ``data_seed``), ``batch_size``, ``steps`` (the budget) and ``target_of_bayes`` (the
        target: val/acc >= this fraction of the val split's Bayes accuracy, rounded to 3
        places): as conf/task/toy.yaml sets them (None: read from that file)."""
        w = fill(
            "toy",
            {},
            dim=dim,
            num_classes=num_classes,
            condition=condition,
            signal=signal,
            n_train=n_train,
            n_test=n_test,
            n_val=n_val,
            batch_size=batch_size,
            data_seed=data_seed,
            steps=steps,
            target_of_bayes=target_of_bayes,
        )
        dim, num_classes, condition, signal = (
            w[k] for k in ("dim", "num_classes", "condition", "signal")
        )
        n_train, n_test, n_val = w["n_train"], w["n_test"], w["n_val"]
        batch_size, data_seed = w["batch_size"], w["data_seed"]
        check_positive(dim=dim, n_train=n_train, n_val=n_val, n_test=n_test, batch_size=batch_size)
        if num_classes < 2 or isinstance(num_classes, bool):
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if not condition >= 1.0:
            raise ValueError(f"condition must be >= 1, got {condition}")
        if not signal > 0:
            raise ValueError(f"signal must be > 0, got {signal}")
        if batch_size > n_train:
            raise ValueError(f"batch_size {batch_size} exceeds n_train {n_train}")
        self.dim, self.num_classes, self.batch_size = dim, num_classes, batch_size
        fraction = w["target_of_bayes"]
        if type(fraction) not in (int, float) or not 0 < fraction <= 1:
            raise ValueError(f"target_of_bayes must be in (0, 1], got {fraction!r}")
        self.device = torch.device(device)

        g = torch.Generator().manual_seed(data_seed)
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
        s = torch.logspace(
            0, -0.5 * torch.log10(torch.tensor(float(condition))).item(), dim, dtype=torch.float64
        )
        w_true = (
            q @ torch.diag(1 / s) @ torch.randn(dim, num_classes, generator=g, dtype=torch.float64)
        )
        w_true *= signal / dim**0.5

        def sample(n: int):
            x = (torch.randn(n, dim, generator=g, dtype=torch.float64) * s) @ q.T
            logits = x @ w_true
            y = torch.multinomial(logits.softmax(-1), 1, generator=g).squeeze(1)
            # The Bayes classifier's expected accuracy on these inputs: mean of max_k p(k | x).
            return x.float(), y, logits.softmax(-1).max(-1).values.mean().item()

        # Three independent samples of the same distribution: train, val, test (in this
        # order, so train and test are the samples they were before val existed).
        self.splits = {"train": sample(n_train)}
        self.splits["test"] = sample(n_test)
        self.splits["val"] = sample(n_val)
        self.bayes_acc = self.splits["val"][2]
        self.splits = {
            k: (x.to(self.device), y.to(self.device)) for k, (x, y, _) in self.splits.items()
        }
        self.train_x, self.train_y = self.splits["train"]
        # Reached within the budget by AdamW at lr 1e-2
        # (python -m suite.run task=toy optimizer.lr=1e-2).
        value = round(fraction * self.bayes_acc, 3)
        self.set_budget(w["steps"], {"metric": "val/acc", "value": value, "direction": "max"})

    def build_model(self) -> nn.Module:
        return nn.Linear(self.dim, self.num_classes).to(self.device)

    def batch(self, seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = epoch_indices(len(self.train_x), self.batch_size, seed, step, self.device)
        return self.train_x[idx], self.train_y[idx]

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        try:
            out = {}
            for split in ("train", "val", "test"):
                x, y = self.splits[split]
                logits = model(x).float()
                out[f"{split}/loss"] = F.cross_entropy(logits, y).item()
                out[f"{split}/acc"] = (logits.argmax(-1) == y).float().mean().item()
        finally:
            model.train(was_training)
        return out
