"""Fused optimizer steps in Triton: one pass over p, g and the state per value.

The in-house optimizers in :mod:`suite.optim` run a step as a chain of element-wise
``torch._foreach_*`` ops, each reading and writing whole tensors (AdamW: ~10 passes
over memory). A fused kernel reads p, g, m, v once and writes p, m, v once: 28 bytes
per float32 parameter, the least a step can move. The optimizers here are drop-in
variants of the pure-torch ones (same constructor, validation and state names, so a
state dict moves between them), and fall back to the pure-torch functional core
wherever the kernel cannot run.

When the kernel runs (:func:`kernel_device`):

- on a CUDA tensor, when Triton imports and ``TRITON_INTERPRET`` is not set;
- on a CPU tensor, when ``TRITON_INTERPRET=1``: Triton's interpreter runs the kernel
  with numpy, one program at a time (slow; this is how the tests run it without a GPU);
- nowhere else: on a CPU tensor the C++/OpenMP extension of :mod:`.cpu` does the step
  (built on first use; ``OPTBENCH_NO_CPP=1`` or a failed build: the pure-torch path, after
  one warning), elsewhere the pure-torch path.

Kernels are wrapped with ``triton.jit`` on first use, once per mode (compiled or
interpreted), rather than at import: ``triton.jit`` fixes the mode when it wraps a
function, so wrapping lazily lets ``TRITON_INTERPRET`` be set after ``import triton``
(torch may import it first) and lets one process use both modes.

Kernel sources may use Triton builtins (``tl.where``, ``tl.reduce``, ...) and the helpers
of ``_triton_common.py``, wrapped with each kernel in its mode, but not the ``triton.jit``
helpers of ``triton.language.standard`` (``tl.max``, ``tl.zeros``): those are wrapped
once, at ``import triton``, and the interpreter cannot call a compiled one.

Files:

- ``adamw.py``, ``sgd.py``, ``adam8bit.py``: the fused functional cores that the family
  classes (:class:`suite.optim.Adam`, ``SGD``, ``Adam8bit``, ...) call when built with
  ``fused=True`` (registry ``*_fused``), and ``Fused*`` names for those classes with
  ``fused=True`` by default;
- ``_multi_tensor.py``: which tensors a kernel takes, and one launch over many tensors;
- ``_triton_*.py``: the kernel sources, imported only when a kernel runs, so Triton
  stays optional; ``_triton_common.py``: what they share (where a program's values lie,
  the Adam update, rounding to bfloat16) and their wrapping in either mode;
- ``cpu.py`` and ``cpp/``: the CPU path (one pass per value, C++ with OpenMP), its build
  and its checks.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import torch

__all__ = ["interpreting", "kernel_device", "triton_available", "BLOCK_TABLE_CACHE"]

# Entries kept by the per-shape block-table caches of the kernels (a few per model:
# one per (device, dtype, step count) group of parameters).
BLOCK_TABLE_CACHE = 64


@functools.cache
def triton_available() -> bool:
    """Whether Triton can be imported (checked once, without importing it)."""
    return importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """Whether ``TRITON_INTERPRET`` asks for Triton's interpreter, as Triton reads it."""
    if "TRITON_INTERPRET" not in os.environ or not triton_available():
        return False  # do not import Triton just to learn that
    try:
        from triton import knobs  # Triton >= 3.3
    except ImportError:
        return os.environ["TRITON_INTERPRET"].lower() in ("1", "true", "on", "yes")
    return bool(knobs.runtime.interpret)


def kernel_device(device: torch.device) -> bool:
    """Whether a fused kernel runs on tensors of ``device`` (module docstring)."""
    if not triton_available():
        return False
    if interpreting():
        return device.type == "cpu"  # the interpreter reads CPU memory only
    return device.type == "cuda"
