r"""Block-wise 8-bit dynamic quantization (Dettmers et al., 2022), in pure torch.

**The dynamic map.** 256 float32 values in [-1, 1], sorted ascending, that spend
their resolution where optimizer state lives: on every decade of magnitude. Decade
:math:`d = 0, \dots, 6` covers :math:`[10^{d-7}, 10^{d-6}]` with :math:`L_d` values,
the midpoints of :math:`L_d` equal steps of :math:`[0.1, 1]` scaled by :math:`10^{d-6}`:

.. math::

    q_{d,k} = 10^{d-6}\,\Bigl(0.1 + \tfrac{0.9}{L_d}\bigl(k + \tfrac12\bigr)\Bigr),
    \qquad k = 0, \dots, L_d - 1,

so each decade carries a fixed *relative* resolution, finer for larger decades. The
signed map (first moment) uses :math:`L_d = 2^d` and both signs of every value; the
unsigned map (second moment, never negative) uses :math:`L_d = 2^{d+1}`, positives
only. Both add 0 and 1: :math:`254 + 2 = 256` values. This is
bitsandbytes' ``create_dynamic_map(signed)``, value for value (a test checks it); the
signed map's most negative value is :math:`-(1 - 0.45/64) = -0.99296875`, not -1.

**Block-wise quantization.** The flattened tensor :math:`x` is cut into blocks of
:data:`BLOCKSIZE` = 256 consecutive values (the last block may be shorter). Block
:math:`b` keeps one float32 scale, its absolute maximum, and each value the index of
the map value nearest to the scaled value:

.. math::

    a_b = \max_{i \in b} |x_i|, \qquad
    c_i = \operatorname*{arg\,min}_{j} \bigl| q_j - x_i / a_b \bigr| \in \{0..255\}
    \ (\text{uint8}), \qquad
    \tilde x_i = a_b\, q_{c_i}.

The error is at most half the gap between the two map values around :math:`x_i/a_b`,
times :math:`a_b`; zeros stay exactly zero (0 is in the map; an all-zero block keeps
:math:`a_b = 0`).

**Finding the nearest value fast.** ``argmin`` over 256 values, or a binary search
(``torch.bucketize`` over the 255 midpoints :math:`m_j = (q_j + q_{j+1})/2`), would
cost several times the rest of an optimizer step on the CPU (per 32k values on one
thread: argmin 19 ms, bucketize 1.8 ms, this lookup 80 us). Instead the top 16 bits of the
scaled float32 (sign, exponent, 7 mantissa bits: a bfloat16 bucket) index a 65536-entry
table built once per map: ``base[h]`` counts the midpoints below the bucket and
``mid_k[h]`` is the k-th midpoint at or above it (:math:`+\infty` past the end). Since
the code of :math:`y` is the number of midpoints below :math:`y`,

.. math::

    c(y) = \mathrm{base}[h(y)] + \textstyle\sum_{k < K} [\, y > \mathrm{mid}_k[h(y)] \,],

exact whenever no bucket holds more than :math:`K` midpoints; :math:`K` is counted when
the table is built (1 for both dynamic maps). Ties go to the lower code, as
``torch.bucketize(y, m)`` does: the tests compare against it.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary

__all__ = [
    "BLOCKSIZE",
    "dynamic_map",
    "num_blocks",
    "quantize_blockwise",
    "quantize_",
    "dequantize_blockwise",
]

BLOCKSIZE = 256
_TINY = torch.finfo(torch.float32).tiny  # divisor for an all-zero block: 0 / tiny = 0


def dynamic_map(signed: bool = True) -> Tensor:
    """The 256-value dynamic map (module docstring), float32, sorted ascending: signed for
    the first moment, unsigned for the second. A new tensor on each call."""
    parts = [torch.zeros(1), torch.ones(1)]
    for d in range(7):
        levels = 2**d if signed else 2 ** (d + 1)
        edges = torch.linspace(0.1, 1.0, levels + 1, dtype=torch.float32)
        decade = 10.0 ** (d - 6) * ((edges[:-1] + edges[1:]) / 2)
        parts += [decade, -decade] if signed else [decade]
    values = torch.cat(parts).sort().values
    assert values.numel() == 256
    return values


def num_blocks(numel: int) -> int:
    """Number of blocks (hence absmax values) for a tensor of ``numel`` values."""
    return -(-numel // BLOCKSIZE)


# ----------------------------------------------------------------------------- lookup


class _Lookup:
    """Tables to encode with one map: ``base`` (uint8, 65536), ``mids`` (K float32 tables
    of 65536), indexed by the top 16 bits of a float32 read as unsigned (module doc)."""

    def __init__(self, qmap: Tensor) -> None:
        q = qmap.detach().to("cpu", torch.float32)  # built on the CPU, then moved
        if q.numel() != 256 or not bool((q[1:] >= q[:-1]).all()):
            raise ValueError("a quantization map must hold 256 float32 values sorted ascending")
        mids = (q[:-1] + q[1:]) / 2
        # The float32 range of bucket h: bit patterns h << 16 ... (h << 16) | 0xFFFF.
        h = torch.arange(65536, dtype=torch.int64)
        bits = torch.stack([h << 16, (h << 16) | 0xFFFF])
        bits = torch.where(bits >= 2**31, bits - 2**32, bits)  # as signed int32
        ends = bits.to(torch.int32).view(torch.float32)
        lo = torch.nan_to_num(ends.min(0).values, nan=0.0)  # NaN buckets: any code will do
        hi = torch.nan_to_num(ends.max(0).values, nan=0.0)
        base = torch.bucketize(lo, mids)  # midpoints < lo
        self.k = max(1, int((torch.bucketize(hi, mids, right=True) - base).max()))
        ext = torch.cat([mids, torch.full((self.k,), float("inf"))])
        self.base = base.to(qmap.device, torch.uint8)
        self.mids = [ext[base + k].to(qmap.device) for k in range(self.k)]


_LOOKUPS: WeakIdKeyDictionary = WeakIdKeyDictionary()


def _lookup(qmap: Tensor) -> _Lookup:
    """The tables for ``qmap``, built once per map tensor (rebuilt if it is modified)."""
    hit = _LOOKUPS.get(qmap)
    if hit is None or hit[0] != qmap._version:
        hit = (qmap._version, _Lookup(qmap))
        _LOOKUPS[qmap] = hit
    return hit[1]


def _encode(y: Tensor, lk: _Lookup, out: Tensor) -> None:
    """``out[i]`` = the code of the nearest map value to ``y[i]`` (both flat, contiguous)."""
    h = (y.view(torch.int32) >> 16).bitwise_and_(0xFFFF)  # endian-free top 16 bits
    torch.index_select(lk.base, 0, h, out=out)
    for mid in lk.mids:
        out.add_(y > mid.index_select(0, h))


def _segments(n: int) -> list[tuple[int, int, int, int]]:
    """(start, stop, block_start, block_stop) of the full blocks, then of the short tail."""
    full = n - n % BLOCKSIZE
    segs = [(0, full, 0, full // BLOCKSIZE)] if full else []
    if full < n:
        segs.append((full, n, full // BLOCKSIZE, full // BLOCKSIZE + 1))
    return segs


# ------------------------------------------------------------------- quantize/dequantize


def quantize_(x: Tensor, qmap: Tensor, codes: Tensor, absmax: Tensor) -> None:
    """Quantize the flat, contiguous float32 ``x`` into ``codes`` (uint8, ``x.numel()``)
    and ``absmax`` (float32, one per block), **scaling x in place** (x ends as x/absmax).
    The in-place form for optimizers, which own a scratch copy of the moment anyway."""
    lk = _lookup(qmap)
    for start, stop, b0, b1 in _segments(x.numel()):
        blocks = x[start:stop].view(b1 - b0, -1)
        scale = absmax[b0:b1]
        # max |x| per block as max(max x, -min x): no |x| temporary (and vector_norm's
        # inf-norm is ~25x slower on the CPU)
        torch.maximum(blocks.amax(1), blocks.amin(1).neg_(), out=scale)
        blocks.div_(scale.clamp(min=_TINY).unsqueeze(1))
    _encode(x, lk, codes)


def quantize_blockwise(
    x: Tensor, qmap: Tensor, *, out: Tensor | None = None, absmax: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Codes (uint8, shape of ``x``) and per-block absmax (float32, :func:`num_blocks`)
    of ``x`` (any float dtype; computed in float32) under the sorted 256-value ``qmap``.
    ``out``/``absmax``: contiguous tensors to write into instead of allocating."""
    n = x.numel()
    work = torch.empty(n, dtype=torch.float32, device=x.device)
    work.copy_(x.reshape(-1))
    if out is None:
        out = torch.empty(x.shape, dtype=torch.uint8, device=x.device)
    if absmax is None:
        absmax = torch.empty(num_blocks(n), dtype=torch.float32, device=x.device)
    if out.dtype != torch.uint8 or out.numel() != n or not out.is_contiguous():
        raise ValueError(f"out must be a contiguous uint8 tensor of {n} values")
    if absmax.dtype != torch.float32 or absmax.numel() != num_blocks(n):
        raise ValueError(f"absmax must be a float32 tensor of {num_blocks(n)} values")
    quantize_(work, qmap, out.view(-1), absmax.view(-1))
    return out, absmax


def dequantize_blockwise(
    codes: Tensor, absmax: Tensor, qmap: Tensor, *, out: Tensor | None = None
) -> Tensor:
    """:math:`\\tilde x_i = a_b\\, q_{c_i}`: float32, shape of ``codes`` (or written into
    ``out``, a contiguous float32 tensor of as many values)."""
    n = codes.numel()
    if absmax.numel() != num_blocks(n):
        raise ValueError(f"absmax has {absmax.numel()} values; {n} codes need {num_blocks(n)}")
    if out is None:
        out = torch.empty(codes.shape, dtype=torch.float32, device=codes.device)
    flat = out.view(-1)
    torch.index_select(qmap.to(torch.float32), 0, codes.reshape(-1).to(torch.int32), out=flat)
    for start, stop, b0, b1 in _segments(n):
        flat[start:stop].view(b1 - b0, -1).mul_(absmax[b0:b1].unsqueeze(1))
    return out
