"""The Triton source of the fused SGD step (see :mod:`suite.optim.kernels.sgd`).

Imported only when a kernel runs; :func:`sgd_kernel` wraps the function with
``triton.jit`` on first use in each mode (see :mod:`suite.optim.kernels`).
"""

from __future__ import annotations

import functools

import triton
import triton.language as tl


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
    pid = tl.program_id(0)
    t = tl.load(block_tensor + pid)
    start = tl.load(block_start + pid)
    row = ptrs + t * 3
    p_ptr = tl.load(row).to(tl.pointer_type(P_TY))
    g_ptr = tl.load(row + 1).to(tl.pointer_type(G_TY))
    if ALIGNED:  # with no mask (a full block) this allows 16-byte vector loads and stores
        start = tl.multiple_of(start, BLOCK)
        p_ptr = tl.multiple_of(p_ptr, 16)
        g_ptr = tl.multiple_of(g_ptr, 16)
    offs = start + tl.arange(0, BLOCK)
    p_ptr += offs
    g_ptr += offs
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
        b_ptr = tl.load(row + 2).to(tl.pointer_type(S_TY))
        if ALIGNED:
            b_ptr = tl.multiple_of(b_ptr, 16)
        b_ptr += offs
        if FIRST:
            b = g
        else:
            b = tl.load(b_ptr, mask=mask).to(tl.float32) * momentum + w_g * g
        if S_TY == tl.bfloat16:  # round by hand: see _triton_adamw.py
            bits = b.to(tl.uint32, bitcast=True)
            rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).to(
                tl.float32, bitcast=True
            )
            b = tl.where(b == b, rounded, b)
        tl.store(b_ptr, b.to(S_TY), mask=mask)
        if NESTEROV:
            g = g + momentum * b
        else:
            g = b
    p = p + neg_lr * g

    if P_TY == tl.bfloat16:
        bits = p.to(tl.uint32, bitcast=True)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).to(tl.float32, bitcast=True)
        p = tl.where(p == p, rounded, p)
    tl.store(p_ptr, p.to(P_TY), mask=mask)


@functools.cache
def sgd_kernel(interpret: bool):
    """``_sgd_step`` wrapped by ``triton.jit`` in the current mode; ``interpret`` (the
    mode, as :func:`suite.optim.kernels.interpreting` reads it) keys the cache."""
    return triton.jit(_sgd_step)
