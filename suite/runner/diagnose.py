"""Where did a diverged run first go non-finite?

``first_nonfinite(model, task, batch)`` replays the forward pass of the step whose
loss was non-finite, with a forward hook on every module, and names the module
that first produced a non-finite output (hooks fire in the order modules finish,
so an inner layer is seen before the block that holds it)::

    "transformer.h.2.attn.c_attn"   a layer whose inputs were finite made NaN/inf
    "pos_embed"                     a parameter itself is non-finite
    "head.weight.grad"              only a gradient is non-finite

A module whose *inputs* were already non-finite did not start the trouble: the
NaN came from outside any module's output (a parameter used directly in a
parent's ``forward``, like ViT's ``pos_embed``, or the batch itself), so the
parameters, then their gradients, are searched before falling back to that
module's name. The root module, whose qualified name is empty, is reported by
its class name (the toy task's model is a bare ``Linear``).

It never raises: a diagnostic must not turn a diverged run into a failed one.

``checklist(...)`` turns what the loop saw into one line of advice for the record.
The loop keeps what it saw at that step in a :class:`Divergence`; :func:`divergence_fields`
turns it into the summary's ``diverged_at_step``, ``diverged_layer`` and ``diagnosis``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from suite.runner.telemetry import early_update_ratio
from suite.tasks.base import Task


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a module's output: tensors, tuples/lists, dicts (incl. ModelOutput)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _tensors(value)


def _nonfinite(obj: Any) -> bool:
    return any(
        (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all())
        for t in _tensors(obj)
    )


def _label(name: str, model: nn.Module) -> str:
    return name or type(model).__name__


def first_nonfinite(
    model: nn.Module, task: Task, batch: Any, *, amp_dtype: torch.dtype | None = None
) -> str | None:
    """The qualified name of the module (or parameter) where ``task.loss(model, batch)``
    first goes non-finite; None if the replay finds nothing non-finite.

    Call it right after a non-finite loss, before the optimizer steps: the model
    is unchanged, so the replay sees the same numbers (pass ``amp_dtype`` when the
    run uses autocast). Parameters and gradients are not modified; under
    ``no_grad`` the replay costs one forward pass.
    """
    try:
        return _first_nonfinite(model, task, batch, amp_dtype)
    except Exception:  # a diagnostic never fails the run
        return None


def _first_nonfinite(
    model: nn.Module, task: Task, batch: Any, amp_dtype: torch.dtype | None
) -> str | None:
    first: list[tuple[str, bool]] = []  # (module name, were its inputs finite?)

    def hook(name: str):
        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            if not first and _nonfinite(output):
                first.append((name, not _nonfinite(inputs)))

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()]
    device = next(model.parameters(), torch.empty(0)).device
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
    try:
        with torch.no_grad(), autocast:
            task.loss(model, batch)
    finally:
        for h in handles:
            h.remove()

    if first and first[0][1]:  # finite in, non-finite out: this module started it
        return _label(first[0][0], model)
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p).all()):
            return name
    for name, p in model.named_parameters():
        if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
            return f"{name}.grad"
    return _label(first[0][0], model) if first else None


def zero_second_moments(optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
    """Evidence against 8-bit state, read at divergence: values whose second moment
    decodes to 0 while their first moment does not. There the step is
    :math:`\\eta\\,\\hat m/(0 + \\epsilon)`, so the learning rate is not what broke: a
    32-bit run at the same lr keeps :math:`v`. Returns ``{"values", "tensors",
    "eps", "worst_step_over_lr"}`` (the largest :math:`|m|/\\epsilon` among them), or
    None where no 8-bit tensor shows it. Never raises."""
    try:
        from suite.optim.state import first_moment, is_8bit, second_moment

        values = tensors = 0
        worst, eps = 0.0, None
        for group in optimizer.param_groups:
            for p in group["params"]:
                state = optimizer.state.get(p, {})
                if not state or not is_8bit(state):
                    continue
                m, v = first_moment(state, p), second_moment(state, p)
                if m is None or v is None:
                    continue
                bad = (v == 0) & (m != 0) & torch.isfinite(m)
                count = int(bad.sum())
                if count:
                    values, tensors = values + count, tensors + 1
                    eps = float(group.get("eps", 0.0) or 0.0)
                    worst = max(worst, float(m[bad].abs().max()) / max(eps, 1e-45))
        if not values:
            return None
        return {"values": values, "tensors": tensors, "eps": eps, "worst_step_over_lr": worst}
    except Exception:  # a diagnostic never fails the run
        return None


def checklist(
    loss_history: list[float],
    step: int,
    steps: int,
    amp: str | None,
    telemetry: list[dict] = (),
    zero_v: dict | None = None,
) -> str:
    """One line from the debugging checklist for a run of ``steps`` steps that went
    non-finite at ``step``; ``zero_v``: :func:`zero_second_moments` of the optimizer then.

    The causes are tried from the most specific evidence to the least: 8-bit state that
    lost its second moment, fp16 overflow, a measured update/weight ratio far above ~1e-3,
    then the shape of the loss curve (early or rising: lr; late: clip or lower lr)."""
    if zero_v:
        return (
            f"8-bit second moment decoded to 0 where the first moment is not "
            f"({zero_v['values']} values in {zero_v['tensors']} tensors): the step there is "
            f"lr*m/eps (up to {zero_v['worst_step_over_lr']:.1e} x lr at eps={zero_v['eps']:.1e}), "
            "so lr is not the cause and 32-bit state at the same lr keeps v; raise eps, keep "
            "these tensors 32-bit (min_8bit_size) or use an 8-bit optimizer that never rounds "
            "a positive v to 0 (the in-house adamw8bit)"
        )
    if amp == "fp16":
        return "non-finite under fp16: use a GradScaler (on by default) or amp=bf16, or lower lr"
    early = step < max(10, steps // 10)
    finite = [x for x in loss_history if math.isfinite(x)]
    rising = len(finite) >= 4 and finite[-1] > 1.5 * min(finite)
    high = early_update_ratio(list(telemetry), within=max(10, steps // 10))
    if high:
        at, layer, ratio = high
        return (
            f"update/weight ratio {ratio:.1e} in {layer} at step {at}, far above ~1e-3: "
            "lr is the suspect; lower lr 2-10x or add warmup"
        )
    if early or rising:
        return "loss blew up early or kept rising: lower lr 2-10x or add warmup"
    return "non-finite loss late in training: add grad_clip=1.0 or lower lr"


@dataclass(frozen=True)
class Divergence:
    """What the loop saw at the step whose loss went non-finite, before that step touched
    the state: the module that first went non-finite and any 8-bit state that lost v."""

    step: int
    layer: str | None
    zero_v: dict[str, Any] | None

    @classmethod
    def seen(
        cls,
        step: int,
        model: nn.Module,
        task: Task,
        batch: Any,
        optimizer: torch.optim.Optimizer,
        amp_dtype: torch.dtype | None = None,
    ) -> Divergence:
        layer = first_nonfinite(model, task, batch, amp_dtype=amp_dtype)
        return cls(step, layer, zero_second_moments(optimizer))


def divergence_fields(
    divergence: Divergence | None,
    loss_history: list[float],
    steps: int,
    amp: str | None,
    telemetry: list[dict] = (),
) -> dict[str, Any]:
    """The summary's ``diverged_at_step``, ``diverged_layer`` and ``diagnosis`` (the
    :func:`checklist` line); all None for a run that did not diverge."""
    if divergence is None:
        return {"diverged_at_step": None, "diverged_layer": None, "diagnosis": None}
    diagnosis = checklist(loss_history, divergence.step, steps, amp, telemetry, divergence.zero_v)
    return {
        "diverged_at_step": divergence.step,
        "diverged_layer": divergence.layer,
        "diagnosis": diagnosis,
    }


# Causes that point away from lr and weight decay: no optimizer hint is added to them.
_NOT_LR = ("8-bit second moment", "non-finite under fp16")


def with_family_hint(diagnosis: str | None, family: str | None, weight_decay: float) -> str | None:
    """The checklist line, plus a hint for Adam with weight decay (coupled L2 where decoupled
    decay may have been meant). Added by the runner, which knows the family; the loop does not."""
    if not diagnosis or diagnosis.startswith(_NOT_LR) or family != "adam" or weight_decay <= 0:
        return diagnosis
    return f"{diagnosis}; Adam with weight decay adds L2 to the gradient: AdamW (decoupled) may be what was meant"
