"""The Triton source of the fused 8-bit Adam/AdamW step (see
:mod:`suite.optim.kernels.adam8bit`), imported only when a kernel runs;
:func:`adam8bit_kernel` is it as a kernel of either mode
(:func:`suite.optim.kernels._triton_common.jit_with_helpers`).
"""

from __future__ import annotations

import triton
import triton.language as tl

from suite.optim.kernels import _triton_common as common

TINY = tl.constexpr(1.1754943508222875e-38)  # torch.finfo(torch.float32).tiny: 0 / TINY = 0


def _maximum(a, b):
    return tl.maximum(a, b)


# The block's absmax is tl.reduce with this combine function, not tl.max: tl.max is a
# triton.jit function itself, made compiled or interpreted once, at `import triton`, so
# when TRITON_INTERPRET=1 is set after that (torch may import Triton first) the
# interpreter cannot call it. tl.reduce is patched by the interpreter, which calls the
# combine function's Python source (.fn); compiled kernels need a JITFunction: this one
# is a JITFunction in both modes.
_maximum = triton.runtime.JITFunction(_maximum)


def _adam8bit_step(
    ptrs,  # int64 [n_tensors, 8]: p, g, exp_avg, exp_avg_sq (uint8 codes),
    # exp_avg_absmax, exp_avg_sq_absmax (float32, one per block), exp_avg_qmap,
    # exp_avg_sq_qmap (float32, 256 sorted values)
    numels,  # int64 [n_tensors]
    block_tensor,  # int32 [n_blocks]: the tensor program i updates
    block_start,  # int64 [n_blocks]: the offset of its block in that tensor
    decay,  # 1 - lr * weight_decay (AdamW)
    weight_decay,  # lambda (Adam: g + lambda p)
    w1,  # 1 - beta1
    beta2,
    w2,  # 1 - beta2
    eps,
    neg_step_size,  # -lr / (1 - beta1^t)
    bias_correction2_sqrt,  # sqrt(1 - beta2^t)
    P_TY: tl.constexpr,  # element types of p and g
    G_TY: tl.constexpr,
    DECAY: tl.constexpr,
    DECOUPLED: tl.constexpr,
    MAXIMIZE: tl.constexpr,
    MASKED: tl.constexpr,  # the tensor's last block, if shorter than BLOCK
    ALIGNED: tl.constexpr,  # every address a multiple of 16 bytes
    BLOCK: tl.constexpr,  # the quantization block: one absmax per BLOCK values
):
    # One program: one quantization block of one tensor. Dequantize m and v, update as
    # suite/optim/adam8bit.py does in float32, requantize with the block's new absmax.
    t, start, offs = common.program_values(block_tensor, block_start, ALIGNED, BLOCK)
    row = ptrs + t * 8
    p_ptr = common.row_pointers(row, 0, P_TY, offs, ALIGNED)
    g_ptr = common.row_pointers(row, 1, G_TY, offs, ALIGNED)
    mc_ptr = common.row_pointers(row, 2, tl.uint8, offs, ALIGNED)
    vc_ptr = common.row_pointers(row, 3, tl.uint8, offs, ALIGNED)
    ma_ptr = tl.load(row + 4).to(tl.pointer_type(tl.float32)) + start // BLOCK
    va_ptr = tl.load(row + 5).to(tl.pointer_type(tl.float32)) + start // BLOCK
    mq_ptr = tl.load(row + 6).to(tl.pointer_type(tl.float32))
    vq_ptr = tl.load(row + 7).to(tl.pointer_type(tl.float32))
    mask = None
    if MASKED:
        mask = offs < tl.load(numels + t)

    p = tl.load(p_ptr, mask=mask).to(tl.float32)
    g = tl.load(g_ptr, mask=mask).to(tl.float32)
    # dequantize: the map value of each code times the block's absmax
    if MASKED:  # lanes past the end read code 0, a valid index into the map
        m_code = tl.load(mc_ptr, mask=mask, other=0).to(tl.int32)
        v_code = tl.load(vc_ptr, mask=mask, other=0).to(tl.int32)
    else:
        m_code = tl.load(mc_ptr).to(tl.int32)
        v_code = tl.load(vc_ptr).to(tl.int32)
    m = tl.load(mq_ptr + m_code) * tl.load(ma_ptr)
    v = tl.load(vq_ptr + v_code) * tl.load(va_ptr)

    p, m, v = common.adam_moments(
        p, g, m, v, decay, weight_decay, w1, beta2, w2, DECAY, DECOUPLED, MAXIMIZE
    )
    p = common.adam_apply(p, m, v, eps, neg_step_size, bias_correction2_sqrt)
    if P_TY == tl.bfloat16:  # round by hand: common.round_bf16 says why
        p = common.round_bf16(p)
    tl.store(p_ptr, p.to(P_TY), mask=mask)

    # requantize: new absmax (masked lanes count as 0), then each scaled value's code is
    # the number of midpoints between map neighbours below it (ties to the lower code,
    # as suite/optim/quant.py), found by binary search: 8 halvings of 0..255
    if MASKED:
        m = tl.where(mask, m, 0.0)
        v = tl.where(mask, v, 0.0)
    m_absmax = tl.reduce(tl.abs(m), 0, _maximum)
    v_absmax = tl.reduce(tl.abs(v), 0, _maximum)
    m = tl.div_rn(m, tl.maximum(m_absmax, TINY))
    v = tl.div_rn(v, tl.maximum(v_absmax, TINY))
    m_code = tl.full([BLOCK], 0, tl.int32)  # tl.zeros is a triton.jit function: see above
    v_code = tl.full([BLOCK], 0, tl.int32)
    for i in tl.static_range(8):
        step = 128 >> i
        j = m_code + (step - 1)  # midpoint j lies between map values j and j + 1
        mid = (tl.load(mq_ptr + j) + tl.load(mq_ptr + j + 1)) * 0.5
        m_code = tl.where(mid < m, m_code + step, m_code)
        j = v_code + (step - 1)
        mid = (tl.load(vq_ptr + j) + tl.load(vq_ptr + j + 1)) * 0.5
        v_code = tl.where(mid < v, v_code + step, v_code)
    tl.store(mc_ptr, m_code.to(tl.uint8), mask=mask)
    v_code = tl.where((v_code == 0) & (v > 0.0), 1, v_code)  # adam8bit.keep_positive_
    tl.store(vc_ptr, v_code.to(tl.uint8), mask=mask)
    tl.store(ma_ptr, m_absmax)
    tl.store(va_ptr, v_absmax)


def adam8bit_kernel(interpret: bool):
    """``_adam8bit_step`` as a kernel of the mode ``interpret``
    (:func:`suite.optim.kernels._triton_common.jit_with_helpers`)."""
    return common.jit_with_helpers(_adam8bit_step, interpret)
