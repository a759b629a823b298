"""Block-wise dynamic quantization (suite/optim/quant.py): the maps equal bitsandbytes',
codes are the nearest map values, error bounds hold per block, odd lengths work."""

from __future__ import annotations

import pytest
import torch

from suite.optim.quant import (
    BLOCKSIZE,
    dequantize_blockwise,
    dynamic_map,
    num_blocks,
    quantize_blockwise,
)

SIGNS = pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])


def heavy_tailed(n: int, signed: bool, seed: int = 0) -> torch.Tensor:
    """Values spread over many decades, like optimizer moments."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen) * torch.rand(n, generator=gen) ** 8
    return x if signed else x.abs()


def padded_blocks(x: torch.Tensor) -> torch.Tensor:
    """x flattened and zero-padded to whole blocks: [num_blocks, BLOCKSIZE]."""
    flat = x.reshape(-1).float()
    out = torch.zeros(num_blocks(flat.numel()) * BLOCKSIZE)
    out[: flat.numel()] = flat
    return out.view(-1, BLOCKSIZE)


def scaled(x: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
    """x / absmax of its block, flat (the value the code stands for)."""
    blocks = padded_blocks(x)
    return (blocks / absmax.clamp(min=torch.finfo(torch.float32).tiny)[:, None]).view(-1)[
        : x.numel()
    ]


@SIGNS
def test_map_equals_bitsandbytes(signed):
    F = pytest.importorskip("bitsandbytes.functional")
    ours = dynamic_map(signed)
    assert ours.dtype == torch.float32 and ours.shape == (256,)
    assert torch.equal(ours, F.create_dynamic_map(signed=signed))


@SIGNS
def test_map_shape(signed):
    q = dynamic_map(signed)
    assert bool((q[1:] > q[:-1]).all()), "sorted, no repeats"
    assert q[-1] == 1.0 and bool((q == 0).any())
    if signed:  # symmetric except for +1: the most negative value is -(1 - 0.45/64)
        assert q[0] == -0.99296875
        assert torch.equal(q[:127], -q[128:255].flip(0)) and q[127] == 0
    else:
        assert q[0] == 0.0


@SIGNS
@pytest.mark.parametrize("n", [1, 255, 256, 257, 1000, 4097, 65539])
def test_codes_are_nearest_and_absmax_is_block_max(signed, n):
    q = dynamic_map(signed)
    x = heavy_tailed(n, signed, seed=n)
    codes, absmax = quantize_blockwise(x, q)
    assert codes.dtype == torch.uint8 and codes.shape == x.shape
    assert absmax.dtype == torch.float32 and absmax.shape == (num_blocks(n),)
    assert torch.equal(absmax, padded_blocks(x).abs().amax(1))  # the short last block too

    y = scaled(x, absmax)
    # nearest: ties to the lower code, as torch.bucketize over the midpoints
    assert torch.equal(codes.long(), torch.bucketize(y, (q[1:] + q[:-1]) / 2))
    y, c = y[:4096], codes.view(-1)[:4096].long()  # brute force on a prefix
    assert torch.equal((y - q[c]).abs(), (y[:, None] - q[None, :]).abs().min(1).values)


@SIGNS
@pytest.mark.parametrize("n", [257, 1000, 4097])
def test_roundtrip_error_bound_per_block(signed, n):
    q = dynamic_map(signed)
    x = heavy_tailed(n, signed, seed=n) * 37.0
    codes, absmax = quantize_blockwise(x, q)
    xq = dequantize_blockwise(codes, absmax, q)
    assert xq.dtype == torch.float32 and xq.shape == x.shape
    err = padded_blocks(xq - x)
    slack = 4 * torch.finfo(torch.float32).eps * absmax  # rounding of x/a and a*q

    # per block: |x~ - x| <= (max gap of neighbouring map values)/2 * absmax_b
    half_max_gap = (q[1:] - q[:-1]).max() / 2
    assert bool((err.abs().amax(1) <= half_max_gap * absmax + slack).all())

    # per value, inside the map's range: half the gap of the interval holding x/a
    y = scaled(x, absmax)
    j = torch.bucketize(y, q, right=True).clamp(1, 255)  # q[j-1] <= y < q[j]
    inside = (y >= q[0]) & (y <= q[-1])
    bound = (q[j] - q[j - 1]) / 2 * absmax.repeat_interleave(BLOCKSIZE)[:n]
    per_value = (xq - x).abs().view(-1)
    assert bool((per_value <= bound + slack.repeat_interleave(BLOCKSIZE)[:n])[inside].all())


@SIGNS
@pytest.mark.parametrize("scale", [1.0, 3.5, 1e-12])
def test_every_code_is_reachable(signed, scale):
    q = dynamic_map(signed)
    codes, absmax = quantize_blockwise(q * scale, q)  # one block: each value its own code
    assert absmax.item() == pytest.approx(scale)
    assert torch.equal(codes.long(), torch.arange(256))

    # and from values strictly inside each code's interval (up to 90% of the way
    # to the midpoint on either side), in one block with absmax 1
    gen = torch.Generator().manual_seed(1)
    lo = torch.cat([q[:1], (q[1:] + q[:-1]) / 2])  # interval of code j: [lo_j, hi_j]
    hi = torch.cat([(q[1:] + q[:-1]) / 2, q[-1:]])
    t = torch.rand(256, generator=gen)
    inner = torch.where(t < 0.5, q - 0.9 * (q - lo) * 2 * t, q + 0.9 * (hi - q) * (2 * t - 1))
    inner[-1] = 1.0  # keeps absmax exactly 1
    codes, _ = quantize_blockwise(inner, q)
    assert torch.equal(codes.long(), torch.arange(256))


@SIGNS
def test_zeros_stay_exactly_zero(signed):
    q = dynamic_map(signed)
    x = heavy_tailed(5 * BLOCKSIZE + 17, signed)
    x[::3] = 0.0
    x[BLOCKSIZE : 2 * BLOCKSIZE] = 0.0  # an all-zero block
    x[-17:] = 0.0  # an all-zero short tail block
    codes, absmax = quantize_blockwise(x, q)
    assert absmax[1] == 0 and absmax[-1] == 0
    xq = dequantize_blockwise(codes, absmax, q)
    assert not xq.isnan().any()
    assert bool((xq[x == 0] == 0).all())
    assert bool((codes[x == 0] == int((q == 0).nonzero())).all())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs(dtype):
    q = dynamic_map(True)
    x = heavy_tailed(1000, True).to(dtype)
    codes, absmax = quantize_blockwise(x, q)
    ref_codes, ref_absmax = quantize_blockwise(x.float(), q)
    assert torch.equal(codes, ref_codes) and torch.equal(absmax, ref_absmax)


def test_out_arguments_and_shapes():
    q = dynamic_map(False)
    x = heavy_tailed(3 * 4097, False).view(3, 4097)
    out = torch.empty(3, 4097, dtype=torch.uint8)
    absmax = torch.empty(num_blocks(x.numel()))
    codes, am = quantize_blockwise(x, q, out=out, absmax=absmax)
    assert codes is out and am is absmax
    xq = torch.empty(3, 4097)
    assert dequantize_blockwise(codes, absmax, q, out=xq) is xq
    with pytest.raises(ValueError, match="absmax"):
        dequantize_blockwise(codes, absmax[:-1], q)
    with pytest.raises(ValueError, match="out must be"):
        quantize_blockwise(x, q, out=torch.empty(5, dtype=torch.uint8))


def test_any_sorted_map_encodes_to_nearest():
    """The lookup is built per map: a linear map (no decades) also gives nearest codes,
    and editing a map in place is noticed."""
    q = torch.linspace(-1, 1, 256)
    x = heavy_tailed(4096, True)
    codes, absmax = quantize_blockwise(x, q)
    assert torch.equal(codes.long(), torch.bucketize(scaled(x, absmax), (q[1:] + q[:-1]) / 2))
    q.copy_(dynamic_map(True))
    assert torch.equal(quantize_blockwise(x, q)[0], quantize_blockwise(x, dynamic_map(True))[0])
    with pytest.raises(ValueError, match="sorted"):
        quantize_blockwise(x, q.flip(0))


@SIGNS
def test_against_bitsandbytes_cpu_quantizer(signed):
    """Dequantization is bitsandbytes' to the bit. Quantization: bnb 0.50's CPU kernel
    is not exactly nearest (it sends |x/a| < ~1e-5, zeros included, to +-2e-5 and misses
    some larger ones), so codes differ; ours is never farther from x than bnb's."""
    F = pytest.importorskip("bitsandbytes.functional")
    q = dynamic_map(signed)
    x = heavy_tailed(64 * BLOCKSIZE, signed)
    codes, absmax = quantize_blockwise(x, q)
    bnb_codes, state = F.quantize_blockwise(x, q, blocksize=BLOCKSIZE)
    assert torch.equal(state.absmax, absmax)
    ref = F.dequantize_blockwise(codes, absmax=absmax, code=q, blocksize=BLOCKSIZE)
    assert torch.equal(dequantize_blockwise(codes, absmax, q), ref)
    y = scaled(x, absmax)
    assert bool(((y - q[codes.long()]).abs() <= (y - q[bnb_codes.long()]).abs()).all())
