"""What the Triton kernels share (``_triton_adamw``, ``_triton_sgd``, ``_triton_adam8bit``):
where a program's values lie, the Adam update in registers, rounding to bfloat16.

A kernel imports this module as ``common`` and calls ``common.round_bf16(x)``. The
helpers are plain functions here: :func:`jit_with_helpers` wraps a kernel with
``triton.jit`` and hands it copies of them wrapped in the same mode, since a compiled
kernel can call only compiled functions and an interpreted one only interpreted ones;
helpers wrapped once, at import, would tie the kernels to one mode (see
:mod:`suite.optim.kernels`). Compiled, a call is inlined: the kernels compile to the
same PTX as when each helper's lines stood in them.
"""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Callable
from typing import Any

import triton
import triton.language as tl


def program_values(block_tensor, block_start, ALIGNED: tl.constexpr, BLOCK: tl.constexpr):
    """``(t, start, offs)`` of this program: the tensor (row) it updates, the offset of
    its first value in that tensor and the offsets of its ``BLOCK`` values."""
    pid = tl.program_id(0)
    t = tl.load(block_tensor + pid)
    start = tl.load(block_start + pid)
    if ALIGNED:  # with no mask (a full block) this allows 16-byte vector loads and stores
        start = tl.multiple_of(start, BLOCK)
    return t, start, start + tl.arange(0, BLOCK)


def row_pointers(row, i, TY: tl.constexpr, offs, ALIGNED: tl.constexpr):
    """Pointers to values ``offs`` of the row's ``i``-th tensor, of element type ``TY``
    (``ALIGNED``: its address is a multiple of 16 bytes)."""
    ptr = tl.load(row + i).to(tl.pointer_type(TY))
    if ALIGNED:
        ptr = tl.multiple_of(ptr, 16)
    return ptr + offs


def adam_moments(
    p,
    g,
    m,
    v,
    decay,
    weight_decay,
    w1,
    beta2,
    w2,
    DECAY: tl.constexpr,
    DECOUPLED: tl.constexpr,
    MAXIMIZE: tl.constexpr,
):
    """``(p, m, v)`` after weight decay and the moment updates, in float32, in the order
    of torch.optim.Adam (:func:`suite.optim.adam_paths.decay_and_moments_`): ``decay`` is
    :math:`1 - \\eta\\lambda` (AdamW), ``weight_decay`` :math:`\\lambda` (Adam: L2 on g),
    ``w1`` and ``w2`` are :math:`1 - \\beta_1` and :math:`1 - \\beta_2`."""
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
    return p, m, v


def adam_apply(p, m, v, eps, neg_step_size, bias_correction2_sqrt):
    """:math:`p - \\frac{\\eta}{1-\\beta_1^t}\\, m / (\\sqrt{v}/\\sqrt{1-\\beta_2^t} + \\epsilon)`
    with IEEE sqrt and division (``v``: the max of v with amsgrad)."""
    denom = tl.div_rn(tl.sqrt_rn(v), bias_correction2_sqrt) + eps
    return p + neg_step_size * tl.div_rn(m, denom)


def round_bf16(x):
    """Float32 ``x`` rounded to the nearest bfloat16, ties to even, still as float32.

    By hand because Triton's interpreter truncates float32 -> bfloat16 (the GPU rounds):
    rounding the float32 bits first makes the cast exact in both, so the interpreter
    tests the code the GPU runs. Add 0x7FFF plus the lowest kept bit, drop the low 16
    bits; NaN stays NaN (``x == x`` is False for it)."""
    bits = x.to(tl.uint32, bitcast=True)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).to(tl.float32, bitcast=True)
    return tl.where(x == x, rounded, x)


HELPERS = (program_values, row_pointers, adam_moments, adam_apply, round_bf16)


@functools.cache
def _jitted(interpret: bool) -> types.ModuleType:
    """This module with :data:`HELPERS` wrapped by ``triton.jit`` in the current mode."""
    module = types.ModuleType(__name__, __doc__)
    for helper in HELPERS:
        setattr(module, helper.__name__, triton.jit(helper))
    return module


@functools.cache
def jit_with_helpers(kernel: Callable[..., Any], interpret: bool) -> Any:
    """``kernel`` wrapped by ``triton.jit`` in the current mode, its calls to this
    module's helpers (``common.round_bf16(x)``, with ``_triton_common`` imported as
    ``common``) going to copies wrapped in the same mode (module docstring); once per
    mode: ``interpret`` (as :func:`suite.optim.kernels.interpreting` reads it) keys the
    cache. The kernel's module stays as it is: the wrapped kernel reads its globals from
    a copy in which this module is :func:`_jitted`'s."""
    this = sys.modules[__name__]
    names = {
        name: _jitted(interpret) if value is this else value
        for name, value in kernel.__globals__.items()
    }
    fn = types.FunctionType(
        kernel.__code__, names, kernel.__name__, kernel.__defaults__, kernel.__closure__
    )
    fn.__qualname__, fn.__module__ = kernel.__qualname__, kernel.__module__
    return triton.jit(fn)
