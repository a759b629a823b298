"""Batches as a pure function of (seed, step), built on the data's own device.

Every random choice draws from a ``torch.Generator`` seeded from
``(seed, step)`` (and a stream name), so batch ``step`` is the same whether a
run got there uninterrupted or was resumed. Augmentations are vectorised over
the batch; nothing loops over samples in Python.
"""

from __future__ import annotations

import functools
import hashlib

import torch
import torch.nn.functional as F


def stream_seed(seed: int, step: int, stream: str = "") -> int:
    """A 63-bit seed mixed from (seed, step, stream); nearby inputs give unrelated seeds."""
    digest = hashlib.blake2b(f"{seed}/{step}/{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def generator(
    seed: int, step: int, device: torch.device | str, stream: str = ""
) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(stream_seed(seed, step, stream))
    return g


def epoch_indices(
    n: int, batch_size: int, seed: int, step: int, device: torch.device | str
) -> torch.Tensor:
    """Indices of batch ``step``: epochs are fresh permutations of ``range(n)``, the last
    partial batch of each epoch is dropped, so every batch has ``batch_size`` samples."""
    per_epoch = n // batch_size
    if per_epoch < 1:
        raise ValueError(f"batch_size {batch_size} is larger than the dataset ({n} samples)")
    epoch, i = divmod(step, per_epoch)
    perm = _epoch_permutation(n, seed, epoch, str(device))
    return perm[i * batch_size : (i + 1) * batch_size].clone()  # the cached perm stays intact


@functools.lru_cache(maxsize=2)
def _epoch_permutation(n: int, seed: int, epoch: int, device: str) -> torch.Tensor:
    """Epoch ``epoch``'s permutation, drawn once per epoch rather than once per batch (the
    same values: it is a pure function of its arguments). At 50,000 Fashion-MNIST images
    the draw costs ~1 ms, ~1-2 % of a CPU-tier image step (results/image_peer_cpu.md)."""
    return torch.randperm(n, generator=generator(seed, epoch, device, "epoch"), device=device)


def random_crop(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad (B, C, H, W) by ``pad`` and crop each sample back at a random offset."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b, 1), generator=g, device=x.device)
    ox = torch.randint(0, 2 * pad + 1, (b, 1), generator=g, device=x.device)
    rows = (oy + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
    cols = (ox + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    # Advanced indices around a slice put their broadcast shape first: (B, H, W, C).
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_hflip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Mirror each sample of (B, C, H, W) left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=g, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_windows(
    tokens: torch.Tensor, block_size: int, batch_size: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` windows of ``block_size + 1`` tokens at random starts: inputs, targets."""
    starts = torch.randint(
        0, len(tokens) - block_size, (batch_size, 1), generator=g, device=tokens.device
    )
    w = tokens[starts + torch.arange(block_size + 1, device=tokens.device)]
    return w[:, :-1], w[:, 1:]


def fixed_windows(
    tokens: torch.Tensor, block_size: int, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` evenly spaced windows (no randomness): the evaluation set of a token stream."""
    last = len(tokens) - block_size - 1
    count = min(count, last + 1)
    starts = torch.linspace(0, last, count, device=tokens.device).round().long()[:, None]
    w = tokens[starts + torch.arange(block_size + 1, device=tokens.device)]
    return w[:, :-1], w[:, 1:]
