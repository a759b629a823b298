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

Two code paths (:mod:`suite.optim.adam_paths`), tested against each other: a
single-tensor loop (the reference, read it first) and a multi-tensor ``torch._foreach_*``
path, which on the CPU walks the tensors in blocks of :data:`CPU_BLOCK_NUMEL` values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from suite.optim.adam_paths import decay_and_moments_, foreach_adam, single_tensor_adam
from suite.optim.hparams import AdamHparams
from suite.optim.optimizer import Optimizer, check, dense_real, with_defaults

__all__ = ["Adam", "AdamW", "adam", "rsqrt_adam_"]

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
    _core = "suite.optim.adam:adam"
    _fused_core = "suite.optim.kernels.adamw:fused_adam"

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
        hparams = AdamHparams.of(group, self.decoupled)
        self._update(*self._init_group(group), hparams, foreach=group["foreach"])


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay,
    :math:`p \\leftarrow p(1 - \\eta\\lambda)` before the Adam update; ``weight_decay``
    defaults to 1e-2 as in torch. Arguments as :class:`Adam`."""

    decoupled = True
    __init__ = with_defaults(Adam.__init__, weight_decay=1e-2)


def adam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    steps: list[Tensor],
    h: AdamHparams,
    *,
    foreach: bool,
) -> None:
    """The functional core: update ``params`` and the state lists in place (see the
    module docstring for the math). ``max_exp_avg_sqs`` is empty unless ``h.amsgrad``."""
    if not params:
        return
    lists = (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps)
    if foreach:
        foreach_adam(*lists, h, cpu_block_numel=CPU_BLOCK_NUMEL)
    else:
        single_tensor_adam(*lists, h)


def rsqrt_adam_(
    p: Tensor,
    g: Tensor,
    m: Tensor,
    v: Tensor,
    denom: Tensor,
    h: AdamHparams,
    *,
    step_size: float,
    bias_correction2_sqrt: float,
) -> None:
    """The Adam update of one float32 ``p``, ``m``, ``v`` in place, in torch.optim.Adam's
    order with :math:`\sqrt{v}` as ``1 / rsqrt(v)``: the 8-bit optimizer's math
    (:mod:`suite.optim.adam8bit`), on its float32 moments and dequantized chunks;
    ``denom``: a scratch tensor like ``v``; ``h.amsgrad`` is not read."""
    if g.dtype != torch.float32:
        g = g.float()
    if h.maximize:
        g = -g
    decay_and_moments_(p, g, m, v, h)
    # sqrt(v) as 1/rsqrt(v) (within 2 ulp; 0 stays 0): torch's CPU sqrt is MKL's, which
    # splits even 1k values across threads, and on a busy machine each call then waits a
    # scheduler tick (~10 ms) for a descheduled peer; rsqrt and reciprocal stay on the
    # calling thread below torch's 32k grain. Measured: 80 us vs 15 ms per 32k chunk.
    torch.rsqrt(v, out=denom).reciprocal_().div_(bias_correction2_sqrt).add_(h.eps)
    p.addcdiv_(m, denom, value=-step_size)
