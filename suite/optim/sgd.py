r"""SGD with momentum, dampening, Nesterov momentum and L2 weight decay.

For each parameter :math:`p` with gradient :math:`g`, learning rate :math:`\eta` (``lr``),
momentum :math:`\mu`, dampening :math:`\tau`, weight decay :math:`\lambda`:

.. math::

    g &\leftarrow -g                            &&\text{if maximize} \\
    g &\leftarrow g + \lambda p                 &&\text{L2 weight decay} \\
    b &\leftarrow \begin{cases} g & \text{first step} \\
                                \mu b + (1-\tau)\, g & \text{after} \end{cases}
                                                &&\text{momentum\_buffer, if } \mu \ne 0 \\
    d &= \begin{cases} g + \mu b & \text{nesterov} \\ b & \text{otherwise} \end{cases}
                                                &&(d = g \text{ if } \mu = 0) \\
    p &\leftarrow p - \eta\, d

as ``torch.optim.SGD`` computes it (the buffer starts as a copy of the first gradient,
undampened). State: ``momentum_buffer`` per parameter, only when :math:`\mu \ne 0`.

Two code paths, tested against each other: a single-tensor loop (the reference) and a
multi-tensor ``torch._foreach_*`` path. Neither ever writes to ``p.grad``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from suite.optim.hparams import SGDHparams
from suite.optim.optimizer import Optimizer, check, dense_real

__all__ = ["SGD", "sgd"]


def _validate(group: dict) -> None:
    """Refuse a bad hyperparameter with a message that names it and its value."""
    check("lr", group["lr"], lambda x: x >= 0, ">= 0")
    momentum = check("momentum", group["momentum"], lambda x: x >= 0, ">= 0")
    dampening = check("dampening", group["dampening"], lambda x: 0 <= x <= 1, "in [0, 1]")
    check("weight_decay", group["weight_decay"], lambda x: x >= 0, ">= 0")
    if group["nesterov"] and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"invalid nesterov=True with momentum={momentum}, "
            f"dampening={dampening} (needs momentum > 0 and dampening = 0)"
        )


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    Args:
        params: parameters or parameter groups (dicts), as for any torch optimizer.
        lr: learning rate :math:`\\eta` (a float, or a one-element tensor).
        momentum: :math:`\\mu` >= 0; 0 keeps no state.
        dampening: :math:`\\tau` in [0, 1], scales the gradient entering the buffer.
        weight_decay: :math:`\\lambda`, L2 penalty added to the gradient.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: ascend the objective instead of descending it.
        foreach: multi-tensor path (True, the default) or the single-tensor reference.
        fused: one fused pass per value (:mod:`suite.optim.kernels`); ``foreach`` then
            picks the path of the tensors the kernels do not take.
    """

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool = True,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=bool(nesterov),
            maximize=bool(maximize),
            foreach=bool(foreach),
        )
        super().__init__(params, defaults, fused)

    _validate = staticmethod(_validate)
    _core = "suite.optim.sgd:sgd"
    _fused_core = "suite.optim.kernels.sgd:fused_sgd"

    def _init_group(self, group: dict, momentum: float) -> tuple[list, list, list]:
        """The group's parameters that have a gradient, their gradients and (when
        ``momentum`` != 0) their momentum buffers, None before the first step."""
        params, grads, bufs = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            dense_real(self, p, complex_ok=True)
            params.append(p)
            grads.append(p.grad)
            if momentum != 0:
                bufs.append(self.state[p].get("momentum_buffer"))
        return params, grads, bufs

    def _step_group(self, group: dict) -> None:
        h = SGDHparams.of(group)
        params, grads, bufs = self._init_group(group, h.momentum)
        self._update(params, grads, bufs, h, foreach=group["foreach"])
        if h.momentum != 0:  # first steps created the buffers
            for p, buf in zip(params, bufs, strict=True):
                self.state[p]["momentum_buffer"] = buf


def sgd(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    h: SGDHparams,
    *,
    foreach: bool,
) -> None:
    """The functional core: update ``params`` in place (see the module docstring).
    ``momentum_buffers`` (one per param when momentum != 0, else empty) may hold None for
    a first step; the new buffers are put in the list in place."""
    if not params:
        return
    fn = _foreach_sgd if foreach else _single_tensor_sgd
    fn(params, grads, momentum_buffers, h)


def _single_tensor_sgd(params, grads, momentum_buffers, h) -> None:
    lr, momentum, dampening, weight_decay = h.lr, h.momentum, h.dampening, h.weight_decay
    for i, p in enumerate(params):
        g = -grads[i] if h.maximize else grads[i]
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)

        if momentum != 0:
            b = momentum_buffers[i]
            if b is None:
                b = momentum_buffers[i] = g.detach().clone()
            else:
                b.mul_(momentum).add_(g, alpha=1 - dampening)
            g = g.add(b, alpha=momentum) if h.nesterov else b

        p.add_(g, alpha=-lr)


def _foreach_sgd(params, grads, momentum_buffers, h) -> None:
    lr, momentum, dampening, weight_decay = h.lr, h.momentum, h.dampening, h.weight_decay
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, p in enumerate(params):  # a foreach op needs one device and one dtype
        groups.setdefault((p.device, p.dtype), []).append(i)

    for idx in groups.values():
        ps = [params[i] for i in idx]
        gs = [grads[i] for i in idx]
        own_gs = False  # True once gs are our temporaries, free to update in place
        if h.maximize:
            gs, own_gs = torch._foreach_neg(gs), True
        if weight_decay != 0:
            if own_gs:
                torch._foreach_add_(gs, ps, alpha=weight_decay)
            else:
                gs, own_gs = torch._foreach_add(gs, ps, alpha=weight_decay), True

        if momentum != 0:
            bs = [momentum_buffers[i] for i in idx]
            if all(b is not None for b in bs):
                torch._foreach_mul_(bs, momentum)
                torch._foreach_add_(bs, gs, alpha=1 - dampening)
            else:  # some first steps: those buffers start as the gradient
                for j, i in enumerate(idx):
                    if bs[j] is None:
                        bs[j] = momentum_buffers[i] = gs[j].detach().clone()
                    else:
                        bs[j].mul_(momentum).add_(gs[j], alpha=1 - dampening)
            if h.nesterov:
                if own_gs:
                    torch._foreach_add_(gs, bs, alpha=momentum)
                else:  # never write to p.grad
                    gs = torch._foreach_add(gs, bs, alpha=momentum)
            else:
                gs = bs

        torch._foreach_add_(ps, gs, alpha=-lr)
