r"""Fused Adam and AdamW: :mod:`suite.optim.adam`'s update in one Triton kernel launch.

The math, symbols and state are those of :mod:`suite.optim.adam` (read its docstring):

.. math::

    g &\leftarrow -g \ (\text{maximize}), \quad g \leftarrow g + \lambda p \ (\text{Adam}),
      \quad p \leftarrow p\,(1 - \eta\lambda) \ (\text{AdamW}) \\
    m &\leftarrow \beta_1 m + (1-\beta_1)\, g, \quad
    v  \leftarrow \beta_2 v + (1-\beta_2)\, g^2, \quad
    \hat v \leftarrow \max(\hat v, v) \ (\text{amsgrad}) \\
    p &\leftarrow p - \frac{\eta}{1-\beta_1^t}\,
         \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}

**How a step runs.** The parameters that have a gradient are grouped by device, dtypes
and step count ``t`` (a parameter that went without a gradient for a while has its own
``t``); each group is one multi-tensor launch (:mod:`suite.optim.kernels._multi_tensor`:
address and block tables, a second small launch for partial last blocks). The
step-dependent scalars (``step_size``, ``bias_correction2_sqrt``) are computed on the
host, in double, as the pure path does, and passed as float32 scalars. Values are
computed in float32 registers and stored back in the tensors' dtypes: bfloat16/float16
parameters (and their moments, kept in the parameter's dtype as torch keeps them) are
rounded once per step instead of once per op. ``amsgrad`` and ``maximize`` run in the
kernel too.

**On a CPU** (without ``TRITON_INTERPRET=1``) the same update runs in the C++ extension
of :mod:`suite.optim.kernels.cpu` (float32/bfloat16, moments like p; float32 AdamW m and v bit
for bit those of the pure path, p within an ulp: torch's CPU sqrt is not correctly
rounded).

**Where it falls back** to :func:`suite.optim.adam.adam` (``foreach`` picks its path):
a device neither path runs on (Triton missing on a GPU; the extension not built or
``OPTBENCH_NO_CPP=1`` on a CPU), float64 or other dtypes (float16 too on a CPU), and
tensors whose memory layouts differ (the kernel walks p, g and the state in memory
order, so they must be dense with equal strides; contiguous and channels-last are).

State dicts move freely between :class:`FusedAdamW` and :class:`suite.optim.AdamW`
(same names, dtypes, devices; ``step`` a float32 CPU scalar). In float32 the two agree
to a few ulp per step (the kernel evaluates in the pure path's order with IEEE sqrt and
division; the GPU may fuse a multiply and an add, numpy and torch's CPU lerp differ in
where they do).
"""

from __future__ import annotations

import torch
from torch import Tensor

from suite.optim.adam import Adam, AdamW, adam
from suite.optim.kernels import cpu, interpreting, kernel_device
from suite.optim.kernels._multi_tensor import kernel_takes, launch
from suite.optim.kernels.cpu import launch as cpu_launch

__all__ = ["FusedAdam", "FusedAdamW", "fused_adam"]


def step_scalars(lr: float, beta1: float, beta2: float, eps: float, wd: float, t: float) -> dict:
    """The step-dependent scalars, computed on the host in double as the pure path does."""
    return dict(
        decay=1 - lr * wd,
        weight_decay=wd,
        w1=1 - beta1,
        beta2=beta2,
        w2=1 - beta2,
        eps=eps,
        neg_step_size=-(lr / (1 - beta1**t)),
        bias_correction2_sqrt=(1 - beta2**t) ** 0.5,
    )


class FusedAdam(Adam):
    """:class:`suite.optim.adam.Adam` built with ``fused=True`` by default (registry
    ``adam_fused`` builds ``Adam(fused=True)`` itself); kept as a name for code and
    state dicts that use it."""

    fused = True


class FusedAdamW(AdamW):
    """:class:`suite.optim.adam.AdamW` with ``fused=True`` by default (as FusedAdam)."""

    fused = True


# ------------------------------------------------------------------ functional core


def fused_adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, h, *, foreach):
    """:func:`suite.optim.adam.adam` with the same arguments, fused where it can be:
    kernel launches for the tensors the kernel takes, the pure path for the rest."""
    rows = [
        (p, grads[i], exp_avgs[i], exp_avg_sqs[i], max_exp_avg_sqs[i] if h.amsgrad else None)
        for i, p in enumerate(params)
    ]
    on_cpu = cpu.available()  # the CPU extension, for CPU tensors the Triton kernel skips
    fused = [(on_cpu and cpu.takes(row, 2)) or kernel_takes(row, 2) for row in rows]
    rest = [i for i, ok in enumerate(fused) if not ok]
    if rest:
        lists = (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps)
        # (max_exp_avg_sqs is empty without amsgrad)
        adam(*([lst[i] for i in rest] if lst else [] for lst in lists), h, foreach=foreach)
    if len(rest) == len(rows):
        return

    # One launch per (device, dtypes, step count): the step count sets two scalars.
    launches: dict[tuple, list[tuple[Tensor, ...]]] = {}
    torch._foreach_add_([s for s, ok in zip(steps, fused, strict=True) if ok], 1.0)
    for i, row in enumerate(rows):
        if fused[i]:
            key = (row[0].device, row[0].dtype, row[1].dtype, row[2].dtype, steps[i].item())
            launches.setdefault(key, []).append(row)
    for (_, _, _, _, t), group in launches.items():
        scalars = step_scalars(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, t)
        _launch(group, **scalars, decoupled=h.decoupled, amsgrad=h.amsgrad, maximize=h.maximize)


def _launch(rows: list[tuple[Tensor | None, ...]], *, decoupled, amsgrad, maximize, **scalars):
    """Update ``rows`` (p, g, m, v, vmax or None; same device, dtypes and step count)."""
    if not kernel_device(rows[0][0].device):  # the CPU extension (suite.optim.kernels.cpu)
        flags = dict(decoupled=decoupled, amsgrad=amsgrad, maximize=maximize)
        return cpu_launch("adam", rows, **scalars, **flags)
    from suite.optim.kernels._triton_adamw import adam_kernel

    p, g, m = rows[0][:3]
    launch(
        adam_kernel(interpreting()),
        rows,
        scalars=scalars,
        dtypes=dict(P_TY=p.dtype, G_TY=g.dtype, S_TY=m.dtype),
        flags=dict(
            DECAY=scalars["weight_decay"] != 0,
            DECOUPLED=decoupled,
            AMSGRAD=amsgrad,
            MAXIMIZE=maximize,
        ),
    )
