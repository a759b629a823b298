"""The two code paths of :func:`suite.optim.adam.adam` (the math: :mod:`suite.optim.adam`):
a single-tensor loop, the reference, and a multi-tensor ``torch._foreach_*`` path.

The foreach path runs each op once over a group's tensors, as torch does. On the CPU it
walks them in cache-sized blocks (:func:`blocks`: contiguous tensors larger than a block
are split into chunk views, small ones packed together): every elementwise pass of a
block runs while the block is still in cache, and the one temporary (``denom``) is
block-sized instead of parameter-sized.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = [
    "single_tensor_adam",
    "foreach_adam",
    "decay_and_moments_",
    "group_by_device_dtype",
    "blocks",
]


def single_tensor_adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h) -> None:
    """The reference: one tensor at a time, each op over the whole tensor; ``h``: an
    :class:`suite.optim.hparams.AdamHparams`."""
    lr, beta1, beta2, eps = h.lr, h.beta1, h.beta2, h.eps
    for i, p in enumerate(params):
        g = -grads[i] if h.maximize else grads[i]
        m, v = exp_avgs[i], exp_avg_sqs[i]

        steps[i] += 1
        t = steps[i].item()

        decay_and_moments_(p, g, m, v, h)

        bias_correction1 = 1 - beta1**t
        bias_correction2_sqrt = (1 - beta2**t) ** 0.5
        step_size = lr / bias_correction1

        if h.amsgrad:
            torch.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
            v = max_exp_avg_sqs[i]
        denom = (v.sqrt() / bias_correction2_sqrt).add_(eps)
        p.addcdiv_(m, denom, value=-step_size)


def decay_and_moments_(p, g, m, v, h) -> None:
    """One tensor's weight decay (decoupled: on ``p``; else L2: added to ``g``, a new
    tensor) and moment updates, in place, in torch.optim.Adam's ops."""
    lr, beta1, beta2, weight_decay = h.lr, h.beta1, h.beta2, h.weight_decay
    if weight_decay != 0:
        if h.decoupled:
            p.mul_(1 - lr * weight_decay)
        else:
            g = g.add(p, alpha=weight_decay)
    m.lerp_(g, 1 - beta1)  # m + (1 - beta1) (g - m) = beta1 m + (1 - beta1) g
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)


def foreach_adam(
    params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h, *, cpu_block_numel
) -> None:
    """Each op over many tensors at once (``torch._foreach_*``), per (device, dtype); on
    the CPU in blocks of ``cpu_block_numel`` values (:func:`blocks`)."""
    lr, beta1, beta2, eps, weight_decay = h.lr, h.beta1, h.beta2, h.eps, h.weight_decay
    decoupled, amsgrad, maximize = h.decoupled, h.amsgrad, h.maximize
    # Per-tensor scalars first: steps may differ between tensors (a parameter that had
    # no gradient for a while), so the bias corrections are per tensor, as in torch.
    torch._foreach_add_(steps, 1.0)
    step_values = [s.item() for s in steps]
    step_sizes = [-(lr / (1 - beta1**t)) for t in step_values]
    bias_correction2_sqrts = [(1 - beta2**t) ** 0.5 for t in step_values]

    lists = [params, grads, exp_avgs, exp_avg_sqs] + ([max_exp_avg_sqs] if amsgrad else [])
    for idx in group_by_device_dtype(params):
        tensors = [[lst[i] for i in idx] for lst in lists]
        scalars = [[step_sizes[i] for i in idx], [bias_correction2_sqrts[i] for i in idx]]
        block = cpu_block_numel if params[idx[0]].device.type == "cpu" else None
        for (ps, gs, ms, vs, *vmax), (ss, bc2s) in blocks(tensors, scalars, block):
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


def group_by_device_dtype(tensors: list[Tensor]) -> list[list[int]]:
    """Indices of ``tensors`` grouped by (device, dtype): a foreach op needs one of each."""
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.device, t.dtype), []).append(i)
    return list(groups.values())


def blocks(
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
