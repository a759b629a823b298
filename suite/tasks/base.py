"""The Task interface: what the training loop needs from a workload.

In the spirit of AlgoPerf's ``Workload``: a task owns its model, its data, its
loss, its evaluation, its target and its default step budget. It never builds
an optimizer. Batches are a pure function of ``(seed, step)`` so a resumed run
sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn


@dataclass(frozen=True)
class Target:
    metric: str  # a val/* key of evaluate()'s result, e.g. "val/acc" or "val/loss"
    value: float
    direction: str  # "max": reached when metric >= value; "min": when metric <= value

    def reached(self, metrics: dict[str, float]) -> bool:
        got = metrics.get(self.metric)
        if got is None:
            return False
        return got >= self.value if self.direction == "max" else got <= self.value


class Task(abc.ABC):
    """One workload. Subclasses set ``name``, ``target`` and ``default_steps``."""

    name: str
    target: Target
    default_steps: int
    device: torch.device = torch.device("cpu")

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model (random init from the current torch seed)."""

    @abc.abstractmethod
    def batch(self, seed: int, step: int) -> Any:
        """The training batch for ``step``: a pure function of ``(seed, step)``."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Scalar training loss of ``model`` on ``batch``."""

    @abc.abstractmethod
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Metrics on three fixed, disjoint splits, keyed ``train/<m>``, ``val/<m>`` and
        ``test/<m>``. Targets, tuning and selection read ``val/*`` only."""

    def train_batches(self, seed: int, start_step: int = 0) -> Iterator[Any]:
        """Endless iterator of training batches from ``start_step`` on."""
        step = start_step
        while True:
            yield self.batch(seed, step)
            step += 1

    # Optimizer hyperparameters this task's definition fixes, e.g. DeepOBS's unregularized
    # problems: {"weight_decay": 0.0}. Runs must match them; tuning leaves them out of the
    # search space and passes them as they are (suite/tune/study.py).
    fixed_hparams: ClassVar[dict[str, float]] = {}

    def check_hparams(self, hparams: dict) -> None:
        """Refuse optimizer hyperparameters this task's definition rules out (ValueError).
        Every hyperparameter is allowed unless a task says otherwise (``fixed_hparams``)."""
        return None

    def decays(self, name: str, param: nn.Parameter) -> bool:
        """Whether weight decay applies: not to biases, norms or other 1-d params."""
        return param.ndim >= 2

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict]:
        """Two param groups: decayed weights, and the rest with weight_decay 0."""
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            if p.requires_grad:
                (decay if self.decays(name, p) else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": weight_decay}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0})
        return groups
