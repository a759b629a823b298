"""Data parallel training under ``torchrun``: which process am I, and what is my share.

    torchrun --standalone --nproc_per_node 2 -m suite.run task=cnn_digits device=cpu \\
        hydra.run.dir=runs/ddp/cnn   # one run dir for all ranks

Every rank draws the same global batch ``task.batch(seed, step)`` (a pure function of
seed and step) and keeps its contiguous slice along dim 0; DDP averages the gradients,
so with equal slices the update is the one-process update on the global batch, for
every optimizer (8-bit state included: each rank holds the full optimizer state).
Rank 0 alone writes the run record, checkpoints and the W&B mirror. Two things
differ from one process by design, as in any DDP run: BatchNorm normalises with each
rank's slice statistics, and per-sample randomness (dropout, drop-path) is drawn per
rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: Any) -> Any:
        """This rank's contiguous slice of every tensor in a (tuple) batch."""
        if self.world == 1:
            return batch
        if isinstance(batch, (tuple, list)):
            return type(batch)(self.shard(t) for t in batch)
        return batch.chunk(self.world)[self.rank]

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of ``value`` over ranks (a collective: every rank must call it)."""
        if self.world == 1:
            return value
        value = value.detach().clone()
        dist.all_reduce(value)
        return value / self.world


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device: torch.device) -> Dist:
    """Join the process group torchrun set up (gloo on CPU, nccl on CUDA); one process: no-op."""
    if world_size() == 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def close() -> None:
    """Leave the process group, if one was joined: torch asks for it before exit, and a gloo
    group left to the interpreter's teardown can abort a rank ("terminate called without an
    active exception", seen once in the DDP test)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """Under torchrun each process takes the GPU of its local rank."""
    if device.type == "cuda" and world_size() > 1:
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


SINGLE = Dist()  # one process, no collectives
