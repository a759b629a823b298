"""What a run costs: optimizer state bytes, peak memory, step timing."""

from __future__ import annotations

import resource
import sys

import torch


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Exact bytes held in the optimizer's state: numel * element_size over every tensor in
    ``optimizer.state`` (moments, 8-bit codes, absmax, quantization maps, step), each
    storage counted once (an 8-bit optimizer may share one quantization map across params)."""
    seen: dict[tuple, int] = {}
    for per_param in optimizer.state.values():
        for value in per_param.values():
            if torch.is_tensor(value):
                key = (value.device, value.untyped_storage().data_ptr(), value.storage_offset())
                seen[key] = max(seen.get(key, 0), value.numel() * value.element_size())
    return sum(seen.values())


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict:
    """Peak memory since the last reset: CUDA max allocated on a GPU; the process's peak
    resident set size on CPU (which includes everything the process loaded before the run)."""
    if device.type == "cuda":
        return {
            "peak_memory_bytes": torch.cuda.max_memory_allocated(device),
            "peak_memory_kind": "cuda_max_allocated",
        }
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return {
        "peak_memory_bytes": rss if sys.platform == "darwin" else rss * 1024,
        "peak_memory_kind": "cpu_peak_rss",
    }
