r"""Adam and AdamW: one functional core, ``decoupled`` picks how weight decay enters.

For each parameter :math:`p` with gradient :math:`g`, at step :math:`t` (``step``,
counted per parameter), with ``beta1, beta2 = betas``:

.. math::

    g &\leftarrow -g                                   &&\text{if maximize} \\
    g &\leftarrow g + \lambda p                        &&\text{Adam: L2 (weight\_decay)} \\
    p &\leftarrow p\,(1 - \eta\lambda)                 &&\text{AdamW: decoupled decay} \\
    m &\leftarrow \beta_1 m + (1-\beta_1)\, g          &&\text{exp\_avg (computed as lerp)} \\
    v &\leftarrow \beta_2 v + (1-\beta_2)\, g^2        &&\text{exp\_avg\_sq} \\
    \hat v &\leftarrow \max(\hat v, v)                 &&\text{max\_exp\_avg\_sq, amsgrad only} \\
    \mathrm{denom} &= \sqrt{v} / \sqrt{1-\beta_2^t} + \epsilon
                                                       &&(\sqrt{\hat v}\text{ with amsgrad}) \\
    p &\leftarrow p - \frac{\eta}{1-\beta_1^t}\, \frac{m}{\mathrm{denom}}

which is :math:`p \mathrel{-}= \eta\, \hat m / (\sqrt{\hat v_t} + \epsilon)` with
:math:`\hat m = m/(1-\beta_1^t)`, :math:`\hat v_t = v/(1-\beta_2^t)`, written in the
order ``torch.optim.Adam`` evaluates it (``bias_correction2_sqrt`` divides the square
root, ``step_size = lr / bias_correction1`` scales the final ``addcdiv``) with the same
elementwise ops, so both round alike: on our CPU the results are bit-identical
(tests/test_optim_parity.py requires 1e-6 relative in float32, 1e-12 in float64).

State per parameter, named as torch names it so state dicts read the same: ``step`` (a
float32 scalar tensor on the CPU), ``exp_avg``, ``exp_avg_sq`` and, with amsgrad,
``max_exp_avg_sq``.

Two code paths, tested against each other: a single-tensor loop (the reference, read
it first) and a multi-tensor ``torch._foreach_*`` path. On the CPU the foreach path
walks the tensors in cache-sized blocks (contiguous tensors are split into chunk views):
every elementwise pass of a block runs while the block is still in cache, and the one
temporary (``denom``) is block-sized instead of parameter-sized. Elsewhere (CUDA) it
runs each op once over all tensors, as torch does.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from suite.optim.optimizer import Optimizer, as_float, check, dense_real

__all__ = ["Adam", "AdamW", "adam"]

# Elements per block on the CPU: p, g, m, v and denom of one block (5 x 4 MiB in
# float32) stay in the L3 cache across the eight passes of a step. Smaller blocks
# mean more OpenMP regions (one per op per chunk), which cost more than they save on a
# busy machine. Measured 2**14..2**22 at 1M-50M params on a 2-core EPYC: 2**20 best.
CPU_BLOCK_NUMEL = 1 << 20


def _validate(group: dict) -> None:
    """Refuse a bad hyperparameter with a message that names it and its value."""
    check("lr", group["lr"], lambda x: x >= 0, ">= 0")
    check("eps", group["eps"], lambda x: x >= 0, ">= 0")
    check("weight_decay", group["weight_decay"], lambda x: x >= 0, ">= 0")
    betas = group["betas"]
    if not isinstance(betas, Sequence) or len(betas) != 2:
        raise ValueError(f"invalid betas: {betas!r} (must be a pair (beta1, beta2))")
    for i, beta in enumerate(betas):
        check(f"betas[{i}]", beta, lambda x: 0 <= x < 1, "in [0, 1)")


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with L2 weight decay added to the gradient.

    Args:
        params: parameters or parameter groups (dicts), as for any torch optimizer.
        lr: learning rate :math:`\\eta` (a float, or a one-element tensor).
        betas: :math:`(\\beta_1, \\beta_2)`, each in [0, 1).
        eps: :math:`\\epsilon`, added to the denominator.
        weight_decay: :math:`\\lambda`; Adam adds :math:`\\lambda p` to the gradient.
        amsgrad: normalise by the running maximum of ``exp_avg_sq``.
        maximize: ascend the objective instead of descending it.
        foreach: multi-tensor path (True, the default) or the single-tensor reference.
        fused: one fused pass per value (:mod:`suite.optim.kernels`); ``foreach`` then
            picks the path of the tensors the kernels do not take.
    """

    decoupled = False  # AdamW sets True: decay the weights, not the gradient

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool = True,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas) if isinstance(betas, Sequence) else betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=bool(amsgrad),
            maximize=bool(maximize),
            foreach=bool(foreach),
        )
        super().__init__(params, defaults, fused)

    _validate = staticmethod(_validate)

    def _init_group(self, group: dict) -> tuple[list[Tensor], ...]:
        """The group's parameters that have a gradient and their state lists (params,
        grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps), state made on first use."""
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            dense_real(self, p)
            state = self.state[p]
            if not state:  # lazy init, as torch: step on the CPU, moments like p
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format
                    )
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            steps.append(state["step"])
        return params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps

    def _step_group(self, group: dict) -> None:
        beta1, beta2 = group["betas"]
        self._update(
            *self._init_group(group),
            lr=as_float("lr", group["lr"]),
            beta1=as_float("betas[0]", beta1),
            beta2=as_float("betas[1]", beta2),
            eps=as_float("eps", group["eps"]),
            weight_decay=as_float("weight_decay", group["weight_decay"]),
            decoupled=self.decoupled,
            amsgrad=group["amsgrad"],
            maximize=group["maximize"],
            foreach=group["foreach"],
        )

    def _update(self, *args: Any, **kwargs: Any) -> None:
        """The functional core that steps a group: :func:`adam`, or fused
        :func:`suite.optim.kernels.adamw.fused_adam` (same arguments)."""
        if self.fused:
            from suite.optim.kernels.adamw import fused_adam  # imports this module

            fused_adam(*args, **kwargs)
        else:
            adam(*args, **kwargs)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay,
    :math:`p \\leftarrow p(1 - \\eta\\lambda)` before the Adam update; ``weight_decay``
    defaults to 1e-2 as in torch. Arguments as :class:`Adam`."""

    decoupled = True

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool = True,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            foreach=foreach,
            fused=fused,
        )


def adam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    steps: list[Tensor],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    amsgrad: bool,
    maximize: bool,
    foreach: bool,
) -> None:
    """The functional core: update ``params`` and the state lists in place (see the
    module docstring for the math). ``max_exp_avg_sqs`` is empty unless ``amsgrad``."""
    if not params:
        return
    fn = _foreach_adam if foreach else _single_tensor_adam
    fn(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_exp_avg_sqs,
        steps,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        decoupled=decoupled,
        amsgrad=amsgrad,
        maximize=maximize,
    )


def _single_tensor_adam(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled,
    amsgrad,
    maximize,
) -> None:
    for i, p in enumerate(params):
        g = -grads[i] if maximize else grads[i]
        m, v = exp_avgs[i], exp_avg_sqs[i]

        steps[i] += 1
        t = steps[i].item()

        if weight_decay != 0:
            if decoupled:
                p.mul_(1 - lr * weight_decay)
            else:
                g = g.add(p, alpha=weight_decay)

        m.lerp_(g, 1 - beta1)  # m + (1 - beta1) (g - m) = beta1 m + (1 - beta1) g
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)

        bias_correction1 = 1 - beta1**t
        bias_correction2_sqrt = (1 - beta2**t) ** 0.5
        step_size = lr / bias_correction1

        if amsgrad:
            torch.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
            v = max_exp_avg_sqs[i]
        denom = (v.sqrt() / bias_correction2_sqrt).add_(eps)
        p.addcdiv_(m, denom, value=-step_size)


def _foreach_adam(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    steps,
    *,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    decoupled,
    amsgrad,
    maximize,
) -> None:
    # Per-tensor scalars first: steps may differ between tensors (a parameter that had
    # no gradient for a while), so the bias corrections are per tensor, as in torch.
    torch._foreach_add_(steps, 1.0)
    step_values = [s.item() for s in steps]
    step_sizes = [-(lr / (1 - beta1**t)) for t in step_values]
    bias_correction2_sqrts = [(1 - beta2**t) ** 0.5 for t in step_values]

    lists = [params, grads, exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if amsgrad else [])
    for idx in _group_by_device_dtype(params):
        tensors = [[lst[i] for i in idx] for lst in lists]
        scalars = [[step_sizes[i] for i in idx], [bias_correction2_sqrts[i] for i in idx]]
        block = CPU_BLOCK_NUMEL if params[idx[0]].device.type == "cpu" else None
        for (ps, gs, ms, vs, *vmax), (ss, bc2s) in _blocks(tensors, scalars, block):
            if maximize:
                gs = torch._foreach_neg(gs)
            if weight_decay != 0:
                if decoupled:
                    torch._foreach_mul_(ps, 1 - lr * weight_decay)
                elif maximize:  # gs is already our own copy
                    torch._foreach_add_(gs, ps, alpha=weight_decay)
                else:
                    gs = torch._foreach_add(gs, ps, alpha=weight_decay)

            torch._foreach_lerp_(ms, gs, 1 - beta1)
            torch._foreach_mul_(vs, beta2)
            torch._foreach_addcmul_(vs, gs, gs, 1 - beta2)

            if amsgrad:
                torch._foreach_maximum_(vmax[0], vs)
                vs = vmax[0]
            denom = torch._foreach_sqrt(vs)  # block-sized temporary on the CPU
            torch._foreach_div_(denom, bc2s)
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(ps, ms, denom, ss)
            del denom, gs  # free this block's temporaries before the next block's


def _group_by_device_dtype(tensors: list[Tensor]) -> list[list[int]]:
    """Indices of ``tensors`` grouped by (device, dtype): a foreach op needs one of each."""
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    return list(groups.values())


def _blocks(
    tensors: list[list[Tensor]], scalars: list[list[float]], block_numel: int | None
) -> Iterator[tuple[list[list[Tensor]], list[list[float]]]]:
    """Split parallel tensor lists (params, grads, moments, ...) into blocks of at most
    ``block_numel`` elements, each with its per-tensor scalars; ``None``: one block.

    A tensor larger than a block, with all its parallel tensors contiguous, is cut into
    flat chunk views (writes go to the tensor itself); any other tensor is one piece.
    Pieces are packed in order, so many small tensors share a block."""
    if block_numel is None or sum(t.numel() for t in tensors[0]) <= block_numel:
        yield tensors, scalars
        return
    block_t: list[list[Tensor]] = [[] for _ in tensors]
    block_s: list[list[float]] = [[] for _ in scalars]
    size = 0
    for i in range(len(tensors[0])):
        row = [ts[i] for ts in tensors]
        if row[0].numel() > block_numel and all(t.is_contiguous() for t in row):
            pieces = zip(*(t.view(-1).split(block_numel) for t in row), strict=True)
        else:
            pieces = [row]
        for piece in pieces:
            n = piece[0].numel()
            if size and size + n > block_numel:
                yield block_t, block_s
                block_t, block_s, size = [[] for _ in tensors], [[] for _ in scalars], 0
            for dst, t in zip(block_t, piece, strict=True):
                dst.append(t)
            for dst, s in zip(block_s, scalars, strict=True):
                dst.append(s[i])
            size += n
    if block_t[0]:
        yield block_t, block_s
