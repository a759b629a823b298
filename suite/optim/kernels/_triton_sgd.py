"""The Triton source of the fused SGD step (see :mod:`suite.optim.kernels.sgd`),
imported only when a kernel runs; :func:`sgd_kernel` is it as a kernel of either mode
(:func:`suite.optim.kernels._triton_common.jit_with_helpers`).
"""

from __future__ import annotations

import triton.language as tl

from suite.optim.kernels import _triton_common as common


def _sgd_step(
    ptrs,  # int64 [n_tensors, 3]: addresses of p, g, momentum_buffer (0: none)
    numels,  # int64 [n_tensors]
    block_tensor,  # int32 [n_blocks]: the tensor program i updates
    block_start,  # int64 [n_blocks]: the offset of its first value in that tensor
    neg_lr,  # -lr
    momentum,
    w_g,  # 1 - dampening: the weight of g in the buffer
    weight_decay,
    P_TY: tl.constexpr,  # element types of p, g and the buffer
    G_TY: tl.constexpr,
    S_TY: tl.constexpr,
    DECAY: tl.constexpr,  # weight_decay != 0
    MOMENTUM: tl.constexpr,  # momentum != 0: a buffer exists
    FIRST: tl.constexpr,  # the buffer's first step: it becomes g
    NESTEROV: tl.constexpr,
    MAXIMIZE: tl.constexpr,
    MASKED: tl.constexpr,  # blocks that may run past the end of their tensor
    ALIGNED: tl.constexpr,  # every address a multiple of 16 bytes
    BLOCK: tl.constexpr,
):
    # One program: BLOCK consecutive values of one tensor, in float32 registers, in the
    # order of torch.optim.SGD (suite/optim/sgd.py).
    t, _, offs = common.program_values(block_tensor, block_start, ALIGNED, BLOCK)
    row = ptrs + t * 3
    p_ptr = common.row_pointers(row, 0, P_TY, offs, ALIGNED)
    g_ptr = common.row_pointers(row, 1, G_TY, offs, ALIGNED)
    mask = None
    if MASKED:
        mask = offs < tl.load(numels + t)

    p = tl.load(p_ptr, mask=mask).to(tl.float32)
    g = tl.load(g_ptr, mask=mask).to(tl.float32)
    if MAXIMIZE:
        g = -g
    if DECAY:
        g = g + weight_decay * p
    if MOMENTUM:
        b_ptr = common.row_pointers(row, 2, S_TY, offs, ALIGNED)
        if FIRST:
            b = g
        else:
            b = tl.load(b_ptr, mask=mask).to(tl.float32) * momentum + w_g * g
        if S_TY == tl.bfloat16:  # round by hand: common.round_bf16 says why
            b = common.round_bf16(b)
        tl.store(b_ptr, b.to(S_TY), mask=mask)
        if NESTEROV:
            g = g + momentum * b
        else:
            g = b
    p = p + neg_lr * g

    if P_TY == tl.bfloat16:
        p = common.round_bf16(p)
    tl.store(p_ptr, p.to(P_TY), mask=mask)


def sgd_kernel(interpret: bool):
    """``_sgd_step`` as a kernel of the mode ``interpret``
    (:func:`suite.optim.kernels._triton_common.jit_with_helpers`)."""
    return common.jit_with_helpers(_sgd_step, interpret)
