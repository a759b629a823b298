"""Peak memory of a run.

Peak memory on a GPU is CUDA's peak allocated bytes. On a CPU it is the resident-set
high-water mark *above the process's baseline* (kind ``cpu_rss_above_baseline``):
:func:`reset_peak_memory`, called before the model is built, resets the kernel's
high-water mark and notes the resident set then (libraries, the task's data); the peak
is ``VmHWM - baseline``, what the model, gradients, optimizer state and activations
added (the whole-process RSS, about 1 GB of libraries on any run, hid all of that).

On a small CPU model that figure is still dominated by activations and allocator slack
(cnn_digits, 20 steps: AdamW 130 MiB, 8-bit AdamW 140 MiB, for a state difference of
1.7 MiB), so runs also record ``suite.optim.state.tensor_bytes``: the exact bytes of
parameters, gradients and optimizer state at the end of the run, the memory an optimizer
choice changes, counted, not sampled.
"""

from __future__ import annotations

import resource
import sys

import torch

_BASELINE: dict[str, int] = {}  # resident set at the last reset (bytes)


def _vm(field: str) -> int | None:
    """A /proc/self/status memory field (``VmHWM``, ``VmRSS``) in bytes, where there is one."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's counter, or on Linux the RSS high-water mark (writing 5 to
    /proc/self/clear_refs) and the baseline it is measured above, so runs of a sweep in one
    process each report their own peak."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return
    rss = _vm("VmRSS")
    if rss is not None:
        _BASELINE["rss"] = rss


def peak_memory(device: torch.device) -> dict:
    """Peak memory since the last reset: CUDA max allocated on a GPU; on Linux CPUs the RSS
    high-water mark above the baseline taken at the reset. Where the high-water mark cannot
    be reset (not Linux), the process lifetime peak RSS (kind ``cpu_peak_rss``)."""
    if device.type == "cuda":
        return {
            "peak_memory_bytes": torch.cuda.max_memory_allocated(device),
            "peak_memory_kind": "cuda_max_allocated",
        }
    hwm = _vm("VmHWM")
    if hwm is not None and "rss" in _BASELINE:
        return {
            "peak_memory_bytes": max(0, hwm - _BASELINE["rss"]),
            "peak_memory_kind": "cpu_rss_above_baseline",
        }
    if hwm is None:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        hwm = rss if sys.platform == "darwin" else rss * 1024
    return {"peak_memory_bytes": hwm, "peak_memory_kind": "cpu_peak_rss"}
