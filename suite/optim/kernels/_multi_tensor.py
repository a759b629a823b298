"""Launching a fused kernel over a list of tensors: which tensors it can take, and the
tables that let one launch cover tensors of any sizes.

A *row* is the tensors one parameter's update touches, parameter first (Adam: p, g,
exp_avg, exp_avg_sq, max_exp_avg_sq; SGD: p, g, momentum_buffer); ``None`` for a tensor
the update does not use. A launch over rows passes the kernel

- ``ptrs``: int64 ``[n_rows, row length]``, the rows' addresses (0 for ``None``),
  cached on the device by value (:func:`address_table`);
- ``numels``: int64 ``[n_rows]``;
- ``block_tensor``, ``block_start``: for program ``i``, the row it updates and the
  offset of its first value; every program updates ``block`` values of one row
  (:data:`BLOCK` unless the kernel needs another, as the 8-bit one does).

and is two launches: one over the full blocks of every row (``MASKED=False``: no bounds
check, so with ``ALIGNED`` the compiler emits 16-byte vector loads and stores), one over
the rows' partial last blocks (``MASKED=True``). ``ALIGNED``: every address is a multiple
of 16 bytes (CUDA allocations are; a view at an odd offset may not be).
"""

from __future__ import annotations

import functools
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

from suite.optim.kernels import BLOCK_TABLE_CACHE, kernel_device

BLOCK = 1024  # values per program: 8 per thread at 4 warps
NUM_WARPS = 4
KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def kernel_takes(row: tuple[Tensor | None, ...], state_from: int) -> bool:
    """Whether a kernel can update ``row``: on a kernel device, float32/bf16/fp16, every
    tensor like the parameter (shape, device, dense with the same strides: the kernel
    walks them all in memory order), and ``row[state_from:]`` of one dtype."""
    p = row[0]
    if not kernel_device(p.device) or not _dense(p):
        return False
    layout = _layout(p)
    tensors = [t for t in row if t is not None]
    state = [t for t in row[state_from:] if t is not None]
    return all(
        t.dtype in KERNEL_DTYPES
        and t.device == p.device
        and t.shape == p.shape
        and _layout(t) == layout
        for t in tensors
    ) and all(t.dtype == state[0].dtype for t in state)


def _layout(t: Tensor) -> tuple[int, ...]:
    """Strides of the dimensions longer than 1 (a stride of a length-1 dim is moot)."""
    return tuple(s for s, n in zip(t.stride(), t.shape, strict=True) if n != 1)


def _dense(t: Tensor) -> bool:
    """Whether ``t``'s values fill ``t.numel()`` consecutive elements of memory."""
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(t.stride(), t.shape, strict=True) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


@functools.lru_cache(maxsize=BLOCK_TABLE_CACHE)
def block_tables(
    device: torch.device, numels: tuple[int, ...], block: int = BLOCK
) -> tuple[Tensor, ...]:
    """``(numels, full_tensor, full_start, tail_tensor, tail_start)`` on ``device``: the
    programs of the full-block launch and of the tail launch. A function of the sizes
    only, so kept across steps."""
    sizes = torch.tensor(numels, dtype=torch.int64)
    full = sizes // block
    full_tensor = torch.repeat_interleave(torch.arange(len(numels), dtype=torch.int32), full)
    first = torch.cumsum(full, 0) - full  # each row's first block
    full_start = (torch.arange(int(full.sum())) - first[full_tensor.long()]) * block
    tail_tensor = torch.nonzero(sizes % block).view(-1)
    tail_start = full[tail_tensor] * block
    tables = (sizes, full_tensor, full_start, tail_tensor.to(torch.int32), tail_start)
    return tuple(x.to(device) for x in tables)


@functools.lru_cache(maxsize=BLOCK_TABLE_CACHE)
def address_table(device: torch.device, addresses: tuple[tuple[int, ...], ...]) -> Tensor:
    """``addresses`` as an int64 tensor on ``device``. Kept while the same addresses come
    back (the caching allocator tends to hand gradients the same memory every step);
    otherwise copied from pinned memory without waiting for the GPU."""
    table = torch.tensor(addresses, dtype=torch.int64)
    if device.type != "cuda":
        return table
    return table.pin_memory().to(device, non_blocking=True)


def launch(
    kernel: Any,
    rows: list[tuple[Tensor | None, ...]],
    *,
    scalars: dict[str, float],
    dtypes: dict[str, torch.dtype],
    flags: dict[str, Any],
    block: int = BLOCK,
    num_warps: int = NUM_WARPS,
) -> None:
    """Run ``kernel`` (a ``triton.jit`` function) over ``rows`` (one device, one dtype per
    position): ``scalars`` as float32 arguments, ``dtypes`` as Triton dtypes and ``flags``
    as compile-time constants."""
    import triton.language as tl

    tl_dtypes = {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}
    rows = [r for r in rows if r[0].numel() > 0]
    if not rows:
        return
    device = rows[0][0].device
    addresses = tuple(tuple(0 if t is None else t.data_ptr() for t in r) for r in rows)
    ptrs = address_table(device, addresses)
    numels, *blocks = block_tables(device, tuple(r[0].numel() for r in rows), block)
    constants = dict(
        **{name: tl_dtypes[dtype] for name, dtype in dtypes.items()},
        **flags,
        ALIGNED=all(a % 16 == 0 for row in addresses for a in row),
        BLOCK=block,
    )
    on_device = torch.cuda.device(device) if device.type == "cuda" else nullcontext()
    with on_device:  # Triton launches on the current CUDA device
        for masked, block_tensor, block_start in ((False, *blocks[:2]), (True, *blocks[2:])):
            if block_tensor.numel():
                kernel[(block_tensor.numel(),)](
                    ptrs,
                    numels,
                    block_tensor,
                    block_start,
                    **scalars,
                    **constants,
                    MASKED=masked,
                    num_warps=num_warps,
                )
