"""The Triton source of the fused Adam/AdamW step (see :mod:`suite.optim.kernels.adamw`),
imported only when a kernel runs; :func:`adam_kernel` is it as a kernel of either mode
(:func:`suite.optim.kernels._triton_common.jit_with_helpers`).
"""

from __future__ import annotations

import triton.language as tl

from suite.optim.kernels import _triton_common as common


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
    t, _, offs = common.program_values(block_tensor, block_start, ALIGNED, BLOCK)
    row = ptrs + t * 5
    p_ptr = common.row_pointers(row, 0, P_TY, offs, ALIGNED)
    g_ptr = common.row_pointers(row, 1, G_TY, offs, ALIGNED)
    m_ptr = common.row_pointers(row, 2, S_TY, offs, ALIGNED)
    v_ptr = common.row_pointers(row, 3, S_TY, offs, ALIGNED)
    mask = None
    if MASKED:
        mask = offs < tl.load(numels + t)

    p = tl.load(p_ptr, mask=mask).to(tl.float32)
    g = tl.load(g_ptr, mask=mask).to(tl.float32)
    m = tl.load(m_ptr, mask=mask).to(tl.float32)
    v = tl.load(v_ptr, mask=mask).to(tl.float32)
    p, m, v = common.adam_moments(
        p, g, m, v, decay, weight_decay, w1, beta2, w2, DECAY, DECOUPLED, MAXIMIZE
    )
    if AMSGRAD:
        vmax_ptr = common.row_pointers(row, 4, S_TY, offs, ALIGNED)
        vmax = tl.maximum(tl.load(vmax_ptr, mask=mask).to(tl.float32), v)
        p = common.adam_apply(p, m, vmax, eps, neg_step_size, bias_correction2_sqrt)
    else:
        p = common.adam_apply(p, m, v, eps, neg_step_size, bias_correction2_sqrt)

    # bfloat16 by hand, so the interpreter and the GPU agree (common.round_bf16 says why)
    if P_TY == tl.bfloat16:
        p = common.round_bf16(p)
    if S_TY == tl.bfloat16:
        m = common.round_bf16(m)
        v = common.round_bf16(v)
        if AMSGRAD:  # vmax is v or a stored value: rounding it again is harmless
            vmax = common.round_bf16(vmax)

    tl.store(p_ptr, p.to(P_TY), mask=mask)
    tl.store(m_ptr, m.to(S_TY), mask=mask)
    tl.store(v_ptr, v.to(S_TY), mask=mask)
    if AMSGRAD:
        tl.store(vmax_ptr, vmax.to(S_TY), mask=mask)


def adam_kernel(interpret: bool):
    """``_adam_step`` as a kernel of the mode ``interpret``
    (:func:`suite.optim.kernels._triton_common.jit_with_helpers`)."""
    return common.jit_with_helpers(_adam_step, interpret)
