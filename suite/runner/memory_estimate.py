"""Will the run fit? An estimate of the memory one training step needs, made before it starts.

    need = parameters + gradients + optimizer state + activations(batch_size)

Parameters and gradients are counted from the built model (numel x element size),
optimizer state from the entry's family and state bits (Adam: two moments, SGD: one
momentum buffer; 8-bit: one byte per value). Activations are what autograd saves for
backward, measured with ``torch.autograd.graph.saved_tensors_hooks`` on a forward
pass of 2 and of 4 samples on the meta device (shapes only: no memory, no compute;
where the model reads a value, on uninitialised real memory), parameters not
counted, and extrapolated linearly: ``a(B) = a(2) + (a(4) - a(2)) (B - 2) / 2``.
It is a lower bound (transient buffers are not counted), so a run it refuses cannot fit.

Available memory: ``torch.cuda.mem_get_info`` on a GPU; on the CPU ``MemAvailable``
from /proc/meminfo, capped by the cgroup's ``memory.max`` where one is set.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from suite.tasks.base import Task

STATE_VALUES = {"sgd": 1, "adam": 2, "adamw": 2}  # state values per parameter, by family
GiB = 2**30
SIZES = (2, 4)  # measured batch sizes (BatchNorm needs 2 samples in training mode)


def available_bytes(device: torch.device) -> tuple[int | None, str]:
    """(free bytes, where the number comes from); None where it cannot be read."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free, "torch.cuda.mem_get_info"
    free, source = None, "/proc/meminfo MemAvailable"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max" and (free is None or int(limit) - used < free):
            free, source = int(limit) - used, "cgroup memory.max - memory.current"
    except (OSError, ValueError):
        pass
    return free, source


def _on_meta(batch: Any) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to("meta")
    if isinstance(batch, (list, tuple)):
        return type(batch)(_on_meta(b) for b in batch)
    if isinstance(batch, dict):
        return {k: _on_meta(v) for k, v in batch.items()}
    return batch


def _saved_bytes(task: Task, model: torch.nn.Module, batch_size: int) -> int:
    small = copy.copy(task)  # shares the data; only the batch size differs
    small.batch_size = batch_size
    batch = small.batch(0, 0)
    if next(model.parameters()).device.type == "meta":
        batch = _on_meta(batch)
    params = {p.untyped_storage()._cdata for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = t.untyped_storage()._cdata
        if key not in params:
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        task.loss(model, batch)
    return sum(seen.values())


def estimate(task: Task, family: str, state_bits: int) -> dict[str, Any] | None:
    """Bytes of each part for one training step at the task's batch size, or None for a
    task without a ``batch_size`` or whose model does not run on the meta device."""
    batch_size = getattr(task, "batch_size", None)
    if not isinstance(batch_size, int):
        return None
    meta = copy.copy(task)
    meta.device = torch.device("meta")  # shapes only: no memory, no init compute
    try:
        with torch.device("meta"):
            model = meta.build_model()
        model.train()
        try:
            small, large = (_saved_bytes(task, model, b) for b in SIZES)
        except Exception:  # a data-dependent op (.item()): uninitialised memory, real shapes
            model.to_empty(device=task.device)
            with torch.random.fork_rng(devices=[]):
                small, large = (_saved_bytes(task, model, b) for b in SIZES)
    except Exception:  # noqa: BLE001 an estimate never stops a run it cannot measure
        return None
    slope = (large - small) / (SIZES[1] - SIZES[0])
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    n_params = sum(p.numel() for p in model.parameters())
    per_value = 1 if state_bits == 8 else 4
    return {
        "batch_size": batch_size,
        "parameters": n_bytes,
        "gradients": n_bytes,
        "optimizer state": STATE_VALUES.get(family, 2) * per_value * n_params,
        "activations": max(0, int(small + slope * (batch_size - SIZES[0]))),
    }


def check_fits(task: Task, family: str, state_bits: int) -> None:
    """Raise ValueError naming both numbers when the estimate exceeds the free memory."""
    parts = estimate(task, family, state_bits)
    free, source = available_bytes(task.device)
    if parts is None or free is None:
        return
    need = sum(v for k, v in parts.items() if k != "batch_size")
    if need > free:
        detail = ", ".join(f"{k} {v / GiB:.2f}" for k, v in parts.items() if k != "batch_size")
        raise ValueError(
            f"task.batch_size={parts['batch_size']} needs at least {need / GiB:.1f} GiB "
            f"({detail} GiB) but {free / GiB:.1f} GiB are free ({source}); "
            "lower task.batch_size"
        )
