r"""8-bit Adam and AdamW: Adam's float32 math, the moments kept as block-wise 8-bit codes.

For each parameter :math:`p` with gradient :math:`g`, at step :math:`t` (``step``),
with ``beta1, beta2 = betas`` and :math:`Q`/:math:`Q^{-1}` the block-wise quantizer of
:mod:`suite.optim.quant` (signed dynamic map for :math:`m`, unsigned for :math:`v`):

.. math::

    m &\leftarrow Q^{-1}(\mathrm{exp\_avg}),\quad v \leftarrow Q^{-1}(\mathrm{exp\_avg\_sq})
                                                       &&\text{float32} \\
    g &\leftarrow -g                                   &&\text{if maximize} \\
    g &\leftarrow g + \lambda p                        &&\text{Adam8bit: L2} \\
    p &\leftarrow p\,(1 - \eta\lambda)                 &&\text{AdamW8bit: decoupled} \\
    m &\leftarrow \beta_1 m + (1-\beta_1)\, g, \quad
    v  \leftarrow \beta_2 v + (1-\beta_2)\, g^2 \\
    p &\leftarrow p - \frac{\eta}{1-\beta_1^t}\,
         \frac{m}{\sqrt{v} / \sqrt{1-\beta_2^t} + \epsilon} \\
    \mathrm{exp\_avg} &\leftarrow Q(m),\quad \mathrm{exp\_avg\_sq} \leftarrow Q(v)
                                                       &&\text{new absmax per block}

i.e. :math:`p \mathrel{-}= \eta\,\hat m/(\sqrt{\hat v}+\epsilon)`, evaluated in the order
of ``torch.optim.Adam`` (see :mod:`suite.optim.adam`), except that :math:`\sqrt{v}` is
computed as ``1 / rsqrt(v)``, within 2 ulp (:func:`suite.optim.adam.rsqrt_adam_`
says why). Parameters in bfloat16/float16 are read into float32 and written back.

**State** per parameter with at least ``min_8bit_size`` values (torch's names, plus the
quantization's): ``step`` (float32 scalar, CPU); ``exp_avg`` and ``exp_avg_sq`` (uint8
codes, shape of ``p``: one byte per value); ``exp_avg_absmax`` and
``exp_avg_sq_absmax`` (float32, one per 256-value block: 4 bytes per block);
``exp_avg_qmap`` and ``exp_avg_sq_qmap`` (float32, the 256-value maps, one tensor
shared by all parameters of a device). Smaller parameters keep float32 ``exp_avg`` and
``exp_avg_sq``, as bitsandbytes does (``min_8bit_size=4096``): 8 bits buy nothing there.

**How a step runs.** The path is picked per tensor from its state's dtype, as in
bitsandbytes' ``Optimizer2State.update_step``. 8-bit moments: one parameter at a time,
in chunks of :data:`CHUNK_NUMEL` values on the CPU, dequantized into chunk-sized
float32 buffers, updated and requantized while the chunk is in cache; the transient
memory is two chunks, not two float32 copies of the largest parameter. No
``torch._foreach_*`` path on purpose: it needs every parameter's dequantized moments
at once, the 32-bit state the optimizer exists to avoid.

Compared with bitsandbytes' ``Adam8bit``: same maps, block size, fallback and math;
bnb's ``Adam8bit`` applies ``weight_decay`` decoupled (as AdamW), ours as L2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from suite.optim.adam import _validate, rsqrt_adam_
from suite.optim.hparams import AdamHparams
from suite.optim.optimizer import Optimizer, dense_real, with_defaults
from suite.optim.quant import BLOCKSIZE, dequantize_blockwise, dynamic_map, num_blocks, quantize_
from suite.optim.verbatim import load_state_verbatim

__all__ = ["Adam8bit", "AdamW8bit", "adam8bit"]

# Values per chunk on the CPU, a multiple of BLOCKSIZE: big enough that torch's
# element-wise ops use every thread (above at::internal::GRAIN_SIZE, 32768) and the
# per-chunk dispatch of ~50 ops is amortised, small enough that the float32 scratch
# (m, v, denom: 1 MiB each) stays in cache. Measured on the 2-core CI machine, one step
# at 10M params: 72.6 ms with 2^18 vs 135 ms with 32,512 (bnb_adamw8bit: 130 ms). On a
# heavily shared machine smaller, single-threaded chunks degrade less.
CHUNK_NUMEL = 1 << 18
assert CHUNK_NUMEL % BLOCKSIZE == 0

_MOMENTS = ("exp_avg", "exp_avg_sq")  # signed map, unsigned map


def _validate_8bit(group: dict) -> None:
    _validate(group)
    size = group["min_8bit_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"invalid min_8bit_size: {size!r} (must be an int >= 0)")


class Adam8bit(Optimizer):
    """8-bit Adam with L2 weight decay (module docstring for the math and state).

    Args:
        params: parameters or parameter groups (dicts), as for any torch optimizer.
        lr: learning rate :math:`\\eta`.
        betas: :math:`(\\beta_1, \\beta_2)`, each in [0, 1).
        eps: :math:`\\epsilon`, added to the denominator.
        weight_decay: :math:`\\lambda`; Adam8bit adds :math:`\\lambda p` to the gradient.
        maximize: ascend the objective instead of descending it.
        min_8bit_size: parameters with fewer values keep float32 moments.
        fused: one fused pass per value (:mod:`suite.optim.kernels`).
    """

    decoupled = False  # AdamW8bit: decay the weights, not the gradient

    def __init__(
        self,
        params: Any,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        min_8bit_size: int = 4096,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas) if isinstance(betas, Sequence) else betas,
            eps=eps,
            weight_decay=weight_decay,
            maximize=bool(maximize),
            min_8bit_size=min_8bit_size,
        )
        super().__init__(params, defaults, fused)
        self._maps: dict[tuple[torch.device, bool], Tensor] = {}

    _validate = staticmethod(_validate_8bit)
    _core = "suite.optim.adam8bit:adam8bit"
    _fused_core = "suite.optim.kernels.adam8bit:fused_adam8bit"

    def __setstate__(self, state: dict) -> None:  # load_state_dict, unpickling, deepcopy
        super().__setstate__(state)
        self._maps = getattr(self, "_maps", {})

    def _map(self, device: torch.device, signed: bool) -> Tensor:
        """The optimizer's one signed/unsigned map per device, shared by its parameters."""
        key = (device, signed)
        if key not in self._maps:
            self._maps[key] = dynamic_map(signed).to(device)
        return self._maps[key]

    def _init_state(self, p: Tensor, state: dict, group: dict) -> None:
        state["step"] = torch.tensor(0.0, dtype=torch.float32)
        if p.numel() < group["min_8bit_size"]:
            for name in _MOMENTS:
                state[name] = torch.zeros(p.shape, dtype=torch.float32, device=p.device)
            return
        for name, signed in zip(_MOMENTS, (True, False), strict=True):
            state[name] = torch.zeros(p.shape, dtype=torch.uint8, device=p.device)
            # all-zero codes decode to the map's 0 only through absmax = 0: 0 * q_0 = 0
            state[f"{name}_absmax"] = torch.zeros(num_blocks(p.numel()), device=p.device)
            state[f"{name}_qmap"] = self._map(p.device, signed)

    def _init_group(self, group: dict) -> tuple[list[Tensor], list[Tensor], list[dict]]:
        """The group's parameters that have a gradient, their gradients and their state
        dicts, state made on first use (:meth:`_init_state`)."""
        params, grads, states = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            dense_real(self, p)
            state = self.state[p]
            if not state:
                self._init_state(p, state, group)
            params.append(p)
            grads.append(p.grad)
            states.append(state)
        return params, grads, states

    def _step_group(self, group: dict) -> None:
        self._update(*self._init_group(group), AdamHparams.of(group, self.decoupled))

    def load_state_dict(self, state_dict: dict) -> None:
        """Load as torch does, except that state tensors come back exactly as saved
        (:func:`suite.optim.verbatim.load_state_verbatim`): codes stay uint8, absmax and
        float32 moments float32, and equal maps are again one shared tensor."""
        load_state_verbatim(self, state_dict, super().load_state_dict)


class AdamW8bit(Adam8bit):
    """8-bit AdamW: decoupled weight decay :math:`p \\leftarrow p(1 - \\eta\\lambda)`;
    ``weight_decay`` defaults to 1e-2 as in torch. Arguments as :class:`Adam8bit`."""

    decoupled = True
    __init__ = with_defaults(Adam8bit.__init__, weight_decay=1e-2)


# ------------------------------------------------------------------ functional core


def adam8bit(
    params: list[Tensor],
    grads: list[Tensor],
    states: list[dict[str, Tensor]],
    h: AdamHparams,
) -> None:
    """Update ``params`` and their ``states`` (dicts as built by :class:`Adam8bit`) in
    place: 8-bit moments chunk by chunk, float32 moments (small tensors) whole."""
    for p, g, state in zip(params, grads, states, strict=True):
        state["step"] += 1
        t = state["step"].item()
        scal = dict(
            step_size=h.lr / (1 - h.beta1**t), bias_correction2_sqrt=(1 - h.beta2**t) ** 0.5
        )
        if state["exp_avg"].dtype == torch.uint8:  # the path per tensor (module doc)
            _update_8bit(p, g, state, h, **scal)
        else:
            p32 = p if p.dtype == torch.float32 else p.float()
            m, v = state["exp_avg"], state["exp_avg_sq"]
            rsqrt_adam_(p32, g, m, v, torch.empty_like(v), h, **scal)
            if p32 is not p:
                p.copy_(p32)


def _update_8bit(p: Tensor, g: Tensor, state: dict, h: AdamHparams, **scal: float) -> None:
    """One step of a parameter with 8-bit moments, chunk by chunk (module docstring)."""
    n = p.numel()
    chunk = CHUNK_NUMEL if p.device.type == "cpu" else n  # one chunk on a GPU
    work = p if p.is_contiguous() else p.contiguous()
    flat_p, flat_g = work.view(-1), g.reshape(-1)
    m_codes, v_codes = state["exp_avg"].view(-1), state["exp_avg_sq"].view(-1)
    m_absmax, v_absmax = state["exp_avg_absmax"], state["exp_avg_sq_absmax"]
    m_map, v_map = state["exp_avg_qmap"], state["exp_avg_sq_qmap"]
    buf_m, buf_v, buf_d = torch.empty(3, min(chunk, n), dtype=torch.float32, device=p.device)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        blocks = slice(start // BLOCKSIZE, num_blocks(stop))
        m = dequantize_blockwise(
            m_codes[start:stop], m_absmax[blocks], m_map, out=buf_m[: stop - start]
        )
        v = dequantize_blockwise(
            v_codes[start:stop], v_absmax[blocks], v_map, out=buf_v[: stop - start]
        )
        p_chunk = flat_p[start:stop]
        p32 = p_chunk if p_chunk.dtype == torch.float32 else p_chunk.float()
        rsqrt_adam_(p32, flat_g[start:stop], m, v, buf_d[: stop - start], h, **scal)
        if p32 is not p_chunk:
            p_chunk.copy_(p32)
        quantize_(m, m_map, m_codes[start:stop], m_absmax[blocks])
        quantize_(v, v_map, v_codes[start:stop], v_absmax[blocks])
        keep_positive_(v_codes[start:stop], v)
    if work is not p:
        p.copy_(work)


def keep_positive_(v_codes: Tensor, v_scaled: Tensor) -> None:
    """Second-moment codes: a positive :math:`v` never takes the zero code (0 -> 1).

    :math:`v \propto g^2` spans twice the decades of :math:`m \propto g`, so in a block
    with one large gradient a value whose :math:`|g|` is below ~4e-4 of the block's
    largest has :math:`v/a_b` under half the map's smallest positive level (3.25e-7) and
    rounds to 0, while its :math:`m/a_b` (signed map, first level 5.5e-7) does not. From
    then on the step is :math:`\eta\,m/(\sqrt{\beta_2 \cdot 0 + (1-\beta_2)g^2}+\epsilon)`:
    the history of :math:`v` is lost and, for a small current :math:`g` and a small
    :math:`\epsilon`, the ratio runs into the thousands (measured: fmnist_mlp, lr 6.7e-4,
    eps 1e-10, diverged at step ~25; 32-bit and bitsandbytes trained). Rounding such a
    :math:`v` up to the smallest positive level instead only ever shrinks that value's
    step (its :math:`\sqrt{v}` is overestimated), and the codes of every
    :math:`v/a_b \ge 1.6\times10^{-7}` are unchanged (nearest level). bitsandbytes' CPU
    quantizer floors harder: its binary search returns code 7 (1.56e-5) for every value
    below ~2e-5, zero included. ``v_scaled`` is :math:`v/a_b` as encoded (its sign is v's)."""
    v_codes.add_(((v_codes == 0) & (v_scaled > 0)).to(torch.uint8))
