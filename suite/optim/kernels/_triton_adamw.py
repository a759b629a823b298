"""The Triton source of the fused Adam/AdamW step (see :mod:`suite.optim.kernels.adamw`).

Imported only when a kernel runs; :func:`adam_kernel` wraps the function with
``triton.jit`` on first use in each mode (see :mod:`suite.optim.kernels`).
"""

from __future__ import annotations

import functools

import triton
import triton.language as tl


def _adam_step(
    ptrs,  # int64 [n_tensors, 5]: addresses of p, g, exp_avg, exp_avg_sq, max_exp_avg_sq
    numels,  # int64 [n_tensors]
    block_tensor,  # int32 [n_blocks]: the tensor program i updates
    block_start,  # int64 [n_blocks]: the offset of its first value in that tensor
    decay,  # 1 - lr * weight_decay (AdamW)
    weight_decay,  # lambda (Adam: g + lambda p)
    w1,  # 1 - beta1: the lerp weight of g in exp_avg
    beta2,
    w2,  # 1 - beta2
    eps,
    neg_step_size,  # -lr / (1 - beta1^t)
    bias_correction2_sqrt,  # sqrt(1 - beta2^t)
    P_TY: tl.constexpr,  # element types of p, g and the state
    G_TY: tl.constexpr,
    S_TY: tl.constexpr,
    DECAY: tl.constexpr,  # weight_decay != 0
    DECOUPLED: tl.constexpr,
    AMSGRAD: tl.constexpr,
    MAXIMIZE: tl.constexpr,
    MASKED: tl.constexpr,  # blocks that may run past the end of their tensor
    ALIGNED: tl.constexpr,  # every address a multiple of 16 bytes
    BLOCK: tl.constexpr,
):
    # One program: BLOCK consecutive values of one tensor, in float32 registers, in the
    # order of torch.optim.Adam (suite/optim/adam.py) with IEEE sqrt and division.
    pid = tl.program_id(0)
    t = tl.load(block_tensor + pid)
    start = tl.load(block_start + pid)
    row = ptrs + t * 5
    p_ptr = tl.load(row).to(tl.pointer_type(P_TY))
    g_ptr = tl.load(row + 1).to(tl.pointer_type(G_TY))
    m_ptr = tl.load(row + 2).to(tl.pointer_type(S_TY))
    v_ptr = tl.load(row + 3).to(tl.pointer_type(S_TY))
    if ALIGNED:  # with no mask (a full block) this allows 16-byte vector loads and stores
        start = tl.multiple_of(start, BLOCK)
        p_ptr = tl.multiple_of(p_ptr, 16)
        g_ptr = tl.multiple_of(g_ptr, 16)
        m_ptr = tl.multiple_of(m_ptr, 16)
        v_ptr = tl.multiple_of(v_ptr, 16)
    offs = start + tl.arange(0, BLOCK)
    p_ptr += offs
    g_ptr += offs
    m_ptr += offs
    v_ptr += offs
    mask = None
    if MASKED:
        mask = offs < tl.load(numels + t)

    p = tl.load(p_ptr, mask=mask).to(tl.float32)
    g = tl.load(g_ptr, mask=mask).to(tl.float32)
    m = tl.load(m_ptr, mask=mask).to(tl.float32)
    v = tl.load(v_ptr, mask=mask).to(tl.float32)

    if MAXIMIZE:
        g = -g
    if DECAY:
        if DECOUPLED:
            p = p * decay
        else:
            g = g + weight_decay * p
    # torch's lerp: from the nearer end, so w1 = 0 or 1 gives m or g exactly
    m = tl.where(w1 < 0.5, m + w1 * (g - m), g - (g - m) * (1.0 - w1))
    v = v * beta2 + w2 * g * g
    if AMSGRAD:
        vmax_ptr = tl.load(row + 4).to(tl.pointer_type(S_TY))
        if ALIGNED:
            vmax_ptr = tl.multiple_of(vmax_ptr, 16)
        vmax_ptr += offs
        vmax = tl.maximum(tl.load(vmax_ptr, mask=mask).to(tl.float32), v)
        denom = tl.div_rn(tl.sqrt_rn(vmax), bias_correction2_sqrt) + eps
    else:
        denom = tl.div_rn(tl.sqrt_rn(v), bias_correction2_sqrt) + eps
    p = p + neg_step_size * tl.div_rn(m, denom)

    # To bfloat16 by hand, to nearest even: Triton's interpreter truncates float32 ->
    # bfloat16 (the GPU rounds); rounding the float32 bits first makes the cast exact in
    # both, so the interpreter tests the code the GPU runs. Add 0x7FFF plus the lowest
    # kept bit, drop the low 16 bits; NaN stays NaN (p == p is False for it).
    if P_TY == tl.bfloat16:
        bits = p.to(tl.uint32, bitcast=True)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).to(tl.float32, bitcast=True)
        p = tl.where(p == p, rounded, p)
    if S_TY == tl.bfloat16:
        bits = m.to(tl.uint32, bitcast=True)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).to(tl.float32, bitcast=True)
        m = tl.where(m == m, rounded, m)
        bits = v.to(tl.uint32, bitcast=True)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).to(tl.float32, bitcast=True)
        v = tl.where(v == v, rounded, v)
        if AMSGRAD:  # vmax is v or a stored value: rounding it again is harmless
            bits = vmax.to(tl.uint32, bitcast=True)
            rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).to(
                tl.float32, bitcast=True
            )
            vmax = tl.where(vmax == vmax, rounded, vmax)

    tl.store(p_ptr, p.to(P_TY), mask=mask)
    tl.store(m_ptr, m.to(S_TY), mask=mask)
    tl.store(v_ptr, v.to(S_TY), mask=mask)
    if AMSGRAD:
        tl.store(vmax_ptr, vmax.to(S_TY), mask=mask)


@functools.cache
def adam_kernel(interpret: bool):
    """``_adam_step`` wrapped by ``triton.jit`` in the current mode; ``interpret`` (the
    mode, as :func:`suite.optim.kernels.interpreting` reads it) keys the cache."""
    return triton.jit(_adam_step)
