"""The fused CPU 8-bit step's encoder table (cpp/step.h ``Lookup``, cpp/adam8bit.inc
``encode``): one 32-bit entry per bucket of floats, one lookup per value.

The code of :math:`y` is the number of map midpoints below it (suite/optim/quant.py,
ties to the lower code). Buckets: :math:`b = 4096 s + t`, :math:`s` the sign bit and
:math:`t = \\min(\\max(h - T_0, 0), 4095)` with :math:`h` the top 16 bits of :math:`|y|`
(exponent, 7 mantissa bits) and :math:`T_0` = ``96 << 7`` (:math:`2^{-31}`). Bucket t of
sign 0 holds the floats with bits in :math:`[(T_0 + t) \\ll 16, ((T_0 + t) \\ll 16) | \\mathtt{FFFF}]`,
except :math:`t = 0` (from +0) and :math:`t = 4095` (up to +inf); sign 1 holds their
negatives. In the unclamped buckets every float shares its top 16 bits, so within a
bucket value order is the order of the low 16 bits (reversed for :math:`y < 0`):
:math:`\\mathrm{key}(y) = (\\mathrm{bits} \\,\\&\\, \\mathtt{FFFF}) \\oplus (s\\,\\mathtt{FFFF})`.
With at most one midpoint :math:`\\mu` in a bucket and none in a clamped one,

.. math::

    c(y) = \\mathrm{base}_b + [\\,\\mathrm{key}(y) > \\mathrm{key}(\\mu_b)\\,],

:math:`\\mathrm{base}_b` the midpoints below the bucket and :math:`\\mathrm{key}(\\mu_b)` =
``0xFFFF`` (never exceeded) where the bucket holds none; the entry packs
:math:`\\mathrm{base}_b` in bits 0-7 and the key in bits 16-31. Exact for every non-NaN
float; a NaN takes the pure path's code (the midpoints below 0). Both dynamic maps
qualify (their smallest midpoint magnitude is 2.75e-7, above :math:`2^{-31}`; at most one
midpoint per 2^-7 of a binade); another map that does not raises at table build.
"""

from __future__ import annotations

import torch
from torch import Tensor

BUCKET_T0, BUCKET_TOP = 96 << 7, 4095


class CpuLookup:
    """``entry`` (int32, 8192), ``nan_code``, ``tensors`` (the map and the entries, as the
    C++ binding takes their addresses) of one 256-value sorted map (module docstring)."""

    def __init__(self, qmap: Tensor) -> None:
        q = qmap.detach().to("cpu", torch.float32).contiguous()
        mids = (q[:-1] + q[1:]) / 2
        t = torch.arange(BUCKET_TOP + 1, dtype=torch.int64)
        lo_bits, hi_bits = (BUCKET_T0 + t) << 16, ((BUCKET_T0 + t) << 16) | 0xFFFF
        lo_bits[0], hi_bits[-1] = 0, 0x7F800000  # from +0; up to +inf
        lo, hi = (b.to(torch.int32).view(torch.float32) for b in (lo_bits, hi_bits))
        lows, highs = torch.cat([lo, -hi]), torch.cat([hi, -lo])  # sign 0, then sign 1
        base = torch.bucketize(lows, mids)  # midpoints below the bucket
        inside = torch.bucketize(highs, mids, right=True) - base
        clamped = torch.zeros_like(inside, dtype=torch.bool)
        clamped[[0, BUCKET_TOP, BUCKET_TOP + 1, 2 * BUCKET_TOP + 1]] = True
        if int(inside.max()) > 1 or bool((inside[clamped] > 0).any()):
            raise ValueError(
                "the fused CPU 8-bit step encodes only maps with at most one midpoint per "
                "bucket and none below 2^-31 in magnitude (the dynamic maps); got another map"
            )
        mid_bits = mids[base.clamp(max=254)].view(torch.int32).to(torch.int64) & 0xFFFF
        negative = torch.arange(base.numel()) > BUCKET_TOP
        key = torch.where(negative, mid_bits ^ 0xFFFF, mid_bits)
        key = torch.where(inside == 1, key, torch.full_like(key, 0xFFFF))
        packed = base | (key << 16)
        self.entry = torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)
        self.nan_code = int(torch.bucketize(torch.zeros(1), mids))
        self.tensors = (q, self.entry)


def cpu_lookup(qmap: Tensor) -> CpuLookup:
    """:class:`CpuLookup` of ``qmap``, made once per map (rebuilt if it is modified: kept
    on quant's per-map cache entry, which checks the map's version)."""
    from suite.optim.quant import _lookup

    lk = _lookup(qmap)
    if getattr(lk, "cpu_lookup", None) is None:
        lk.cpu_lookup = CpuLookup(qmap)
    return lk.cpu_lookup
