r"""Fused 8-bit Adam and AdamW: :mod:`suite.optim.adam8bit`'s step in one Triton pass.

The math, maps, block size and state are those of :mod:`suite.optim.adam8bit` and
:mod:`suite.optim.quant` (read their docstrings). One program per 256-value quantization
block: dequantize the block's ``exp_avg``/``exp_avg_sq`` codes (map value times the
block's absmax), do the float32 Adam update of p, m and v in registers, then requantize
m and v with the block's new absmax; the nearest code is a binary search over the
midpoints of the 256 sorted map values (8 halvings; ties to the lower code, as
:func:`suite.optim.quant.quantize_`). p, g and the codes are read and written once: 4 +
4 + 1 + 1 bytes in and 4 + 1 + 1 out per float32 value, and no float32 copy of the
moments ever exists.

On a CPU the C++ extension of :mod:`suite.optim.kernels.cpu` runs the same pass (block
by block: decode and update into 256-float buffers, absmax, scale and encode with one
table entry per value: ``cpp/adam8bit.inc``), and the parameters below ``min_8bit_size`` (float32 moments) through its
32-bit Adam kernel with sqrt as the pure path's ``1 / rsqrt``: params, codes and absmax
are bit for bit the pure path's, in float32 and bfloat16.

Parameters are grouped into launches by device, dtypes and step count, as in
:mod:`suite.optim.kernels.adamw`. Where the kernel does not run, the pure path
(:func:`suite.optim.adam8bit.adam8bit`) steps the parameter: on a device without the
kernel, for parameters below ``min_8bit_size`` (float32 moments), for a non-contiguous
parameter or gradient (the blocks are runs of the flattened, row-major tensor), and for
float64 parameters.

Rounding: the kernel computes ``sqrt(v)`` as an IEEE square root where the pure path uses
``1 / rsqrt(v)`` (within 2 ulp), so a value lying on a midpoint to within a few ulp may get
the neighbouring code; everything else agrees to a few ulp.
"""

from __future__ import annotations

import torch
from torch import Tensor

from suite.optim.adam8bit import Adam8bit, AdamW8bit, adam8bit
from suite.optim.kernels import cpu, interpreting, kernel_device
from suite.optim.kernels._multi_tensor import KERNEL_DTYPES, launch
from suite.optim.kernels.adamw import step_scalars
from suite.optim.kernels.cpu import launch as cpu_launch
from suite.optim.quant import BLOCKSIZE

__all__ = ["FusedAdam8bit", "FusedAdamW8bit", "fused_adam8bit"]

NUM_WARPS = 2  # 256 values per program: 4 per thread
_ROW = ("exp_avg", "exp_avg_sq", "exp_avg_absmax", "exp_avg_sq_absmax")
_ROW += ("exp_avg_qmap", "exp_avg_sq_qmap")


class FusedAdam8bit(Adam8bit):
    """:class:`suite.optim.adam8bit.Adam8bit` with ``fused=True`` by default (registry
    ``adam8bit_fused`` builds ``Adam8bit(fused=True)`` itself); kept as a name."""

    fused = True


class FusedAdamW8bit(AdamW8bit):
    """:class:`suite.optim.adam8bit.AdamW8bit` with ``fused=True`` by default."""

    fused = True


def fused_adam8bit(params, grads, states, h):
    """:func:`suite.optim.adam8bit.adam8bit` with the same arguments, fused where it can
    be: kernel launches for 8-bit states the kernel takes, the pure path for the rest."""
    on_cpu = cpu.available()  # the CPU extension, for CPU tensors the Triton kernel skips
    triples = list(zip(params, grads, states, strict=True))
    fused = [_kernel_takes(p, g, s, on_cpu) for p, g, s in triples]
    # On the CPU, float32 moments (small tensors) too: the 32-bit Adam kernel, sqrt as
    # the pure path's 1 / rsqrt
    small = [on_cpu and _cpu_takes_32bit(p, g, s) for p, g, s in triples]
    rest = [i for i, ok in enumerate(fused) if not ok and not small[i]]
    if rest:
        adam8bit(*([lst[i] for i in rest] for lst in (params, grads, states)), h)

    launches: dict[tuple, list[tuple[Tensor, ...]]] = {}
    ours = [i for i in range(len(params)) if fused[i] or small[i]]
    torch._foreach_add_([states[i]["step"] for i in ours], 1.0)
    for i in ours:
        p, g, state = triples[i]
        maps = (id(state.get("exp_avg_qmap")), id(state.get("exp_avg_sq_qmap")))
        key = (p.device, p.dtype, g.dtype, state["step"].item(), small[i], maps)
        names = _ROW if fused[i] else _ROW[:2]
        launches.setdefault(key, []).append((p, g, *(state[k] for k in names)))
    for (device, p_dtype, g_dtype, t, is_small, _), rows in launches.items():
        scalars = step_scalars(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, t)
        flags = dict(decoupled=h.decoupled, maximize=h.maximize)
        if is_small:
            rows = [(*row, None) for row in rows]  # no max_exp_avg_sq
            cpu_launch("adam", rows, **scalars, **flags, amsgrad=False, sqrt_as_rsqrt=True)
            continue
        if not kernel_device(device):  # the CPU extension (suite.optim.kernels.cpu)
            cpu_launch("adam8bit", rows, **scalars, **flags)
            continue
        launch(
            _kernel(),
            rows,
            scalars=scalars,
            dtypes=dict(P_TY=p_dtype, G_TY=g_dtype),
            flags=dict(DECAY=h.weight_decay != 0, DECOUPLED=h.decoupled, MAXIMIZE=h.maximize),
            block=BLOCKSIZE,
            num_warps=NUM_WARPS,
        )


def _cpu_takes_32bit(p: Tensor, g: Tensor, state: dict[str, Tensor]) -> bool:
    """float32 moments (a tensor below ``min_8bit_size``) the CPU Adam kernel can step."""
    row = (p, g, state["exp_avg"], state["exp_avg_sq"])
    return state["exp_avg"].dtype == torch.float32 and cpu.takes(row, state_from=2)


def _kernel_takes(p: Tensor, g: Tensor, state: dict[str, Tensor], on_cpu: bool) -> bool:
    """8-bit state, on a kernel device (or the CPU extension's), p and g contiguous of a
    kernel dtype, and the state tensors as :class:`suite.optim.adam8bit.Adam8bit` makes
    them."""
    if state["exp_avg"].dtype != torch.uint8:
        return False
    if not kernel_device(p.device):
        return on_cpu and cpu.takes_8bit(p, g, state)
    tensors = [state[k] for k in _ROW]
    return (
        p.dtype in KERNEL_DTYPES
        and g.dtype in KERNEL_DTYPES
        and g.shape == p.shape
        and all(t.device == p.device and t.is_contiguous() for t in (p, g, *tensors))
        and all(state[k].dtype == torch.uint8 for k in _ROW[:2])
        and all(t.dtype == torch.float32 and t.numel() == 256 for t in tensors[4:])
    )


def _kernel():
    from suite.optim.kernels._triton_adam8bit import adam8bit_kernel

    return adam8bit_kernel(interpreting())
