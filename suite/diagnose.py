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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

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
