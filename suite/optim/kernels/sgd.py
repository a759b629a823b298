r"""Fused SGD with momentum: :mod:`suite.optim.sgd`'s update in one Triton kernel launch.

The math, symbols and state are those of :mod:`suite.optim.sgd` (read its docstring):

.. math::

    g &\leftarrow -g \ (\text{maximize}), \quad g \leftarrow g + \lambda p \\
    b &\leftarrow g \ (\text{first step}), \quad b \leftarrow \mu b + (1-\tau)\, g
      \ (\text{after}) \\
    p &\leftarrow p - \eta\,(g + \mu b) \ (\text{nesterov}), \quad
    p \leftarrow p - \eta\, b \ (\text{otherwise}; \ p - \eta g \text{ if } \mu = 0)

One multi-tensor launch per (device, dtypes, first step or not) group
(:mod:`suite.optim.kernels._multi_tensor`), float32 registers, values stored in the
tensors' dtypes. A new ``momentum_buffer`` is made like the gradient (as the pure path's
``g.clone()``) and written by the kernel. On a CPU the C++ extension of
:mod:`suite.optim.kernels.cpu` runs it (float32 results bit for bit the pure path's).
Falls back to :func:`suite.optim.sgd.sgd` where neither runs, as
:mod:`suite.optim.kernels.adamw` does. Never writes to
``p.grad``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from suite.optim.kernels import cpu, interpreting, kernel_device
from suite.optim.kernels._multi_tensor import kernel_takes, launch
from suite.optim.kernels.cpu import launch as cpu_launch
from suite.optim.sgd import SGD, sgd

__all__ = ["FusedSGD", "fused_sgd"]


class FusedSGD(SGD):
    """:class:`suite.optim.sgd.SGD` with ``fused=True`` by default (registry
    ``sgd_fused`` builds ``SGD(fused=True)`` itself); kept as a name."""

    fused = True


def fused_sgd(params, grads, momentum_buffers, h, *, foreach):
    """:func:`suite.optim.sgd.sgd` with the same arguments, fused where it can be; new
    buffers are put in ``momentum_buffers`` in place, as there."""
    lr, momentum, dampening, weight_decay = h.lr, h.momentum, h.dampening, h.weight_decay
    nesterov, maximize = h.nesterov, h.maximize
    bufs = momentum_buffers if momentum != 0 else [None] * len(params)
    rows = [(p, grads[i], bufs[i]) for i, p in enumerate(params)]
    on_cpu = cpu.available()  # the CPU extension, for CPU tensors the Triton kernel skips
    fused = [(on_cpu and cpu.takes(row, 2)) or kernel_takes(row, 2) for row in rows]
    rest = [i for i, ok in enumerate(fused) if not ok]
    if rest:
        rest_bufs = [momentum_buffers[i] for i in rest] if momentum != 0 else []
        sgd([params[i] for i in rest], [grads[i] for i in rest], rest_bufs, h, foreach=foreach)
        for i, buf in zip(rest if momentum != 0 else [], rest_bufs, strict=True):
            momentum_buffers[i] = buf

    # One launch per (device, dtypes, first step or not).
    launches: dict[tuple, list[tuple[Tensor | None, ...]]] = {}
    for i, (p, g, b) in enumerate(rows):
        if not fused[i]:
            continue
        first = momentum != 0 and b is None
        if first:  # like the pure path's g.clone(): the kernel writes g into it
            b = momentum_buffers[i] = torch.empty_like(g, memory_format=torch.preserve_format)
        key = (p.device, p.dtype, g.dtype, None if b is None else b.dtype, first)
        launches.setdefault(key, []).append((p, g, b))
    for (device, p_dtype, g_dtype, b_dtype, first), group in launches.items():
        scalars = dict(neg_lr=-lr, momentum=momentum, w_g=1 - dampening, weight_decay=weight_decay)
        if not kernel_device(device):  # the CPU extension (suite.optim.kernels.cpu)
            cpu_launch("sgd", group, **scalars, first=first, nesterov=nesterov, maximize=maximize)
            continue
        launch(
            _kernel(),
            group,
            scalars=scalars,
            dtypes=dict(P_TY=p_dtype, G_TY=g_dtype, S_TY=b_dtype or p_dtype),
            flags=dict(
                DECAY=weight_decay != 0,
                MOMENTUM=momentum != 0,
                FIRST=first,
                NESTEROV=nesterov,
                MAXIMIZE=maximize,
            ),
        )


def _kernel():
    from suite.optim.kernels._triton_sgd import sgd_kernel

    return sgd_kernel(interpreting())
