"""Fixed, disjoint train/val/test splits: the same for every run, whatever its seed.

Selection and tuning read ``val``; ``test`` is reported once. Each dataset's
official test set stays its test split; val is carved out of the official
training data so that the test split is the one published numbers use:

- images: ``VAL_SIZE[name]`` images drawn by a permutation of the official
  training set seeded with ``SPLIT_SEED`` (DeepOBS's protocol: 10,000 of the
  60,000 MNIST / Fashion-MNIST training images);
- Tiny Shakespeare: nanoGPT's split by characters, first 90 % train and last
  10 % val in nanoGPT, which is our **test** (so that our test loss is the
  number nanoGPT reports as "val loss"); our val is the last ninth of nanoGPT's
  train part, the same size as test;
- WikiText-2 and the Brown corpus: their own files (see text.py and brown.py).
"""

from __future__ import annotations

import torch

SPLIT_SEED = 0
VAL_SIZE = {"digits": 360, "mnist": 10_000, "fashion_mnist": 10_000, "cifar10": 10_000}


def holdout(n: int, size: int, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, val indices), each sorted: ``size`` of ``range(n)`` drawn by a
    permutation seeded with ``seed``; the rest is train."""
    if not 0 < size < n:
        raise ValueError(f"a holdout of {size} needs 0 < size < {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[size:].sort().values, perm[:size].sort().values


def nanogpt_split(text: str) -> tuple[str, str, str]:
    """(train, val, test) of a text: nanoGPT's last 10 % is test, val is the last ninth of
    the first 90 % (the same length as test), train the rest."""
    n = int(0.9 * len(text))  # nanoGPT: data[:n] train, data[n:] val
    n_val = len(text) - n
    return text[: n - n_val], text[n - n_val : n], text[n:]
