"""What a run costs: optimizer state bytes, peak memory, step timing."""

from __future__ import annotations

import resource
import sys

import torch


def inner_tensors(t: torch.Tensor) -> list[torch.Tensor]:
    """The plain tensors holding a tensor's bytes: a tensor subclass (torchao's quantized
    optimizer state: codes + scales) flattened through ``__tensor_flatten__``; else itself."""
    if type(t) is not torch.Tensor and hasattr(t, "__tensor_flatten__"):
        names, _ = t.__tensor_flatten__()
        return [x for n in names for x in inner_tensors(getattr(t, n))]
    return [t]


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Exact bytes held in the optimizer's state: numel * element_size over every tensor in
    ``optimizer.state`` (moments, 8-bit codes, absmax, quantization maps, step; a tensor
    subclass by its inner tensors), each storage counted once (an 8-bit optimizer may share
    one quantization map across params)."""
    seen: dict[tuple, int] = {}
    for per_param in optimizer.state.values():
        for value in per_param.values():
            if not torch.is_tensor(value):
                continue
            for t in inner_tensors(value):
                key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset())
                seen[key] = max(seen.get(key, 0), t.numel() * t.element_size())
    return sum(seen.values())


def _vm_hwm() -> int | None:
    """The process's resident-set high-water mark (bytes) from /proc, where there is one."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's counter, or on Linux the RSS high-water mark (writing 5 to
    /proc/self/clear_refs), so runs of a sweep in one process each report their own peak."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_memory(device: torch.device) -> dict:
    """Peak memory since the last reset: CUDA max allocated on a GPU; on CPU the process's
    peak resident set size (everything the process holds: libraries, data, model, state).
    Where the high-water mark cannot be reset (not Linux), it is the process lifetime peak."""
    if device.type == "cuda":
        return {
            "peak_memory_bytes": torch.cuda.max_memory_allocated(device),
            "peak_memory_kind": "cuda_max_allocated",
        }
    hwm = _vm_hwm()
    if hwm is None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        hwm = rss if sys.platform == "darwin" else rss * 1024
    return {"peak_memory_bytes": hwm, "peak_memory_kind": "cpu_peak_rss"}
