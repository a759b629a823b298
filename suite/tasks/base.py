"""The Task interface: what the training loop needs from a workload.

In the spirit of AlgoPerf's ``Workload``: a task owns its model, its data, its
loss, its evaluation, its target and its default step budget; the last two, like
the dataset and the model and batch sizes, come from the workload's ``conf/task/*.yaml``
(``workloads.py``). It never
builds an optimizer. Batches are a pure function of ``(seed, step)`` so a resumed run
sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator, Mapping
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

    @classmethod
    def from_config(cls, cfg: Mapping, metrics: tuple[str, ...]) -> Target:
        """A target from a task config's ``target: {metric, value, direction}``; ``metrics``
        are the val metrics the task evaluates. A ValueError in one line names a bad value."""
        keys = ("metric", "value", "direction")
        if not isinstance(cfg, Mapping) or sorted(cfg) != sorted(keys):
            raise ValueError(f"invalid task.target {cfg!r}: must set exactly {', '.join(keys)}")
        metric, value, direction = (cfg[k] for k in keys)
        if metric not in metrics:
            raise ValueError(f"invalid task.target.metric {metric!r}; valid: {', '.join(metrics)}")
        if direction not in ("max", "min"):
            raise ValueError(f"invalid task.target.direction {direction!r}; valid: max, min")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ValueError(f"invalid task.target.value {value!r}: must be a finite number")
        return cls(metric, float(value), direction)


class Task(abc.ABC):
    """One workload. Subclasses set ``name``, ``val_metrics`` and, through
    :meth:`set_budget`, ``default_steps`` and ``target``."""

    name: str
    target: Target
    default_steps: int
    val_metrics: ClassVar[tuple[str, ...]]  # the val/* keys of evaluate(): what a target may read
    device: torch.device = torch.device("cpu")

    def set_budget(self, steps: int, target: Mapping) -> None:
        """The workload's default step budget and its val target, from its task config."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"invalid task.steps {steps!r}: must be an integer >= 1")
        self.default_steps = steps
        self.target = Target.from_config(target, self.val_metrics)

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
    # search space and passes them as they are (suite/tune/study.py); the run's checking
    # pass refuses others (suite/runner/schema.py).
    fixed_hparams: ClassVar[dict[str, float]] = {}

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
