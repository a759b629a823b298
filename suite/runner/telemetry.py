"""Per-layer optimizer telemetry, every ``telemetry_every`` steps (0: off, the default).

Adam is "an automatic step size per parameter": its update is lr * m_hat / (sqrt(v_hat)
+ eps), so each value moves with its own effective learning rate

    eff_lr_i = lr / (sqrt(v_hat_i) + eps),   v_hat = v / (1 - beta2^t)

(v = ``exp_avg_sq``, t the optimizer's step count, lr/beta2/eps the param group's). For
every parameter tensor ("layer") whose optimizer state exposes a second moment (the
in-house Adam family, torch's Adam/AdamW/NAdam/RAdam, Schedule-Free AdamW, bitsandbytes'
``state2`` and the in-house 8-bit codes after dequantization, torchao's subclasses via
``dequantize()``), a ``telemetry`` event holds its 5/50/95 % quantiles. For every
optimizer it holds the update-to-weight ratio

    update_ratio = ||p_t - p_{t-1}|| / ||p_{t-1}||     (Frobenius norms, one tensor)

which is ~1e-3 per step in a healthy run (Karpathy's rule of thumb); far above it early
means lr is too large. Quantiles of a layer with more than ``QUANTILE_LIMIT`` values are
taken on an even stride through it (torch.quantile's input limit).

Optimizers that keep their own step size in the param group (``d``: Prodigy, D-Adaptation)
scale the update by it, so lr alone says nothing. Prodigy (its group holds ``d0`` and
``use_bias_correction``) keeps v = d^2 * EMA(g^2) and steps d*lr*bc * m / (sqrt(v) + d*eps),
so per value

    eff_lr_i = d * lr * bc / (sqrt(v_i) / d + eps),   bc = sqrt(1 - beta2^k) / (1 - beta1^k)
                                                      if use_bias_correction, else 1

with d as the group holds it after the step. Any other group with a ``d`` gets no
eff_lr (unsupported: the formula is the optimizer's own); every such group's layers carry
``step_size_d``, the step-size state itself.

Event in ``metrics.jsonl``::

    {"event": "telemetry", "step": 100, "cost_s": 0.002,
     "layers": {"0.weight": {"update_ratio": 1.2e-3, "eff_lr_p5": ..., "eff_lr_p50": ...,
                             "eff_lr_p95": ...}, ...}}

Cost: a telemetry step copies the parameters once (before the step) and reads the
state; ``cost_s`` is that time, kept out of the step time the loop records, and the
summary's ``telemetry`` block sets its median beside the median step time.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch

from suite.optim.state import second_moment

QUANTILES = (0.05, 0.5, 0.95)
QUANTILE_LIMIT = 1 << 24


def _step_count(state: dict, group: dict) -> float | None:
    for value in (state.get("step"), group.get("step"), group.get("k")):
        if value is not None:
            return float(value)
    return None


def effective_lr(state: dict, group: dict, p: torch.Tensor) -> torch.Tensor | None:
    """lr / (sqrt(v / (1 - beta2^t)) + eps) per value of ``p`` (see the module docstring)."""
    if "betas" not in group or "eps" not in group:
        return None
    if "d" in group:
        return _prodigy_effective_lr(state, group, p)
    v = second_moment(state, p)
    t = _step_count(state, group)
    if v is None or not t:
        return None
    beta2 = float(group["betas"][1])
    v_hat = v / (1.0 - beta2**t)
    return float(group["lr"]) / (v_hat.sqrt() + float(group["eps"]))


def _prodigy_effective_lr(state: dict, group: dict, p: torch.Tensor) -> torch.Tensor | None:
    """Prodigy's per-value step (module docstring); None for another ``d`` optimizer."""
    if not ("d0" in group and "use_bias_correction" in group):
        return None  # D-Adaptation and others: unsupported, only step_size_d is recorded
    v, k = second_moment(state, p), _step_count(state, group)
    d, (beta1, beta2) = float(group["d"]), map(float, group["betas"])
    if v is None or not k or d <= 0:
        return None
    bc = (1 - beta2**k) ** 0.5 / (1 - beta1**k) if group["use_bias_correction"] else 1.0
    return d * float(group["lr"]) * bc / (v.sqrt() / d + float(group["eps"]))


def quantiles(x: torch.Tensor) -> list[float]:
    x = x.detach().flatten().float()
    if x.numel() > QUANTILE_LIMIT:
        x = x[:: -(-x.numel() // QUANTILE_LIMIT)]
    return torch.quantile(x, torch.tensor(QUANTILES, device=x.device)).tolist()


class Telemetry:
    """Call :meth:`before_step` and :meth:`after_step` around ``optimizer.step()`` on the
    steps :meth:`due` names; :meth:`after_step` returns the event. The events of steps up
    to ``early_steps`` are also kept in :attr:`early`, for the diagnosis of a run that
    diverges early (see suite.runner.diagnose.checklist)."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        every: int,
        early_steps: int = 0,
    ):
        self.every, self.optimizer, self.early_steps = every, optimizer, early_steps
        self.names = {id(p): n for n, p in model.named_parameters()}
        self.costs: list[float] = []
        self.early: list[dict] = []
        self._before: dict[int, torch.Tensor] = {}
        self.before_cost = 0.0

    def due(self, step: int) -> bool:
        """Whether step number ``step`` (1-based: the step about to be taken) is observed."""
        return self.every > 0 and step % self.every == 0

    def before_step(self) -> None:
        t0 = time.perf_counter()
        self._before = {
            id(p): p.detach().clone()
            for g in self.optimizer.param_groups
            for p in g["params"]
            if p.grad is not None and id(p) in self.names
        }
        self.before_cost = time.perf_counter() - t0

    @torch.no_grad()
    def after_step(self, step: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        layers: dict[str, dict[str, float | None]] = {}
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                before = self._before.get(id(p))
                if before is None:
                    continue
                norm = before.float().norm().item()
                delta = (p.detach().float() - before.float()).norm().item()
                row: dict[str, float | None] = {"update_ratio": delta / norm if norm > 0 else None}
                eff = effective_lr(self.optimizer.state.get(p, {}), group, p)
                if eff is not None:
                    for q, value in zip(QUANTILES, quantiles(eff), strict=True):
                        row[f"eff_lr_p{round(q * 100)}"] = value
                if isinstance(group.get("d"), (int, float)):
                    row["step_size_d"] = float(group["d"])  # the optimizer's own step size
                layers[self.names[id(p)]] = row
        self._before = {}
        cost = self.before_cost + time.perf_counter() - t0
        self.costs.append(cost)
        event = {"event": "telemetry", "step": step, "cost_s": cost, "layers": layers}
        if step <= self.early_steps:
            self.early.append(event)
        return event

    def summary(self, step_times: list[float]) -> dict[str, Any] | None:
        """Its cost beside the step time of the same run (None when telemetry is off)."""
        if self.every <= 0:
            return None
        return {
            "every": self.every,
            "events": len(self.costs),
            "median_cost_s": statistics.median(self.costs) if self.costs else None,
            "median_step_time_s": statistics.median(step_times) if step_times else None,
        }


def flat(event: dict) -> dict[str, Any]:
    """The event with one key per layer statistic (``telemetry/<layer>/<stat>``), for W&B."""
    out = {"event": event["event"], "step": event["step"], "telemetry/cost_s": event["cost_s"]}
    for layer, row in event["layers"].items():
        for stat, value in row.items():
            out[f"telemetry/{layer}/{stat}"] = value
    return out


def early_update_ratio(events: list[dict], within: int, threshold: float = 1e-2):
    """(step, layer, ratio) of the first layer whose update/weight ratio exceeds
    ``threshold`` (10x the ~1e-3 of a healthy run) at a step <= ``within``; else None."""
    for event in events:
        if event.get("event") != "telemetry" or event["step"] > within:
            continue
        worst = max(
            (
                (row["update_ratio"], layer)
                for layer, row in event["layers"].items()
                if row.get("update_ratio") is not None and math.isfinite(row["update_ratio"])
            ),
            default=None,
        )
        if worst and worst[0] > threshold:
            return event["step"], worst[1], worst[0]
    return None
