"""Fused optimizer steps on the CPU: a C++/OpenMP extension, built on first use.

On a CPU tensor the fused entries (``adam_fused``, ``adamw_fused``, ``sgd_fused``,
``adam8bit_fused``, ``adamw8bit_fused``) run one pass per value, as the Triton kernels
do on a GPU: read p, g and the state once, write p and the state once (AdamW float32:
28 bytes per parameter; SGD with momentum: 20; 8-bit Adam: 4 + 4 + 1 + 1 in, 4 + 1 + 1
out, plus the absmax). The pure-torch paths run each element-wise op over whole
tensors, which is why they reach a fraction of the memory bandwidth.

**The sources** (``cpp/``): ``kernels.inc`` holds the Adam/AdamW (amsgrad, maximize)
and SGD ((Nesterov) momentum) loops, ``adam8bit.inc`` the 8-bit Adam/AdamW step (per
256-value block: decode, update p, m and v and take the new absmax in L1 buffers, then
scale and encode with one 32-bit table entry per value: ``_cpu_lookup.py``; with AVX2,
table lookups as scalar loads and four of the six float32 divisions per value as
multiply-adds that round to the same float: ``simd8.inc``), all compiled by ``kernels.cpp`` once for the
x86-64 baseline and once for x86-64-v3 (AVX2, FMA), the fastest picked at run time, so
the build never depends on the machine it was made on; ``bind.cpp`` takes the tensors' addresses and sizes (so it
needs pybind11 alone, not torch's headers: a cold build in seconds) and runs one OpenMP
region per call over pieces of 16,384 values, dynamically scheduled, with one thread per
131,072 values at most (a small step stays on the calling thread); the thread count is
torch's (``torch.set_num_threads`` sets OpenMP's).

**Rounding.** Every value is computed in float32 in the pure path's order, op by op, with
torch's CPU rounding: ``lerp`` and ``add(alpha=...)`` as fused multiply-adds (torch's
``at::vec::fmadd``), everything else rounded on its own (``-ffp-contract=off``), the
step-dependent scalars in double on the host then float32, ``sqrt`` as ``1 / rsqrt``
where the pure 8-bit path does that. So SGD and 8-bit results (params, codes, absmax) are
bit for bit the pure path's, AdamW's moments too (Adam's L2 gradient follows p), and
Adam/AdamW params within an ulp of their largest value:
the pure path's ``torch.sqrt`` (MKL's vector sqrt) is not correctly rounded, the kernel's
is (tests/test_kernels.py). bfloat16 parameters
(and moments kept like them) are read into float32 and rounded once per step, to nearest
even, as the Triton kernels do (the pure path rounds after every op).

**Build.** ``torch.utils.cpp_extension.load`` with g++ and ninja, once per machine and
version of the sources: cached in torch's extension folder (``$TORCH_EXTENSIONS_DIR``,
default ``~/.cache/torch_extensions/<python>_<cuda>/optbench_cpu_steps_<hash>``, one
folder per version of the sources and flags: :func:`build_name`); concurrent processes
wait on torch's advisory lock (``flock``: a killed build leaves none behind). If it cannot
be built (no compiler, no ninja) or ``OPTBENCH_NO_CPP=1``, the fused entries run the
pure-torch path on the CPU, after one warning.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import warnings
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from suite.optim.kernels._cpu_lookup import cpu_lookup
from suite.optim.kernels._multi_tensor import _dense, _layout

__all__ = ["extension", "takes", "takes_8bit", "launch", "build_info"]

SOURCES = Path(__file__).resolve().parent / "cpp"
CPU_DTYPES = (torch.float32, torch.bfloat16)
FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fopenmp"]


def build_name() -> str:
    """``optbench_cpu_steps_<hash of the sources and flags>``: each version of the sources
    builds in its own folder, so checkouts of different versions on one machine neither
    rebuild over each other nor replace a library another process has loaded."""
    digest = hashlib.sha256(" ".join(FLAGS).encode())
    for path in sorted(SOURCES.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return f"optbench_cpu_steps_{digest.hexdigest()[:12]}"


_BUILD: dict[str, float | str] = {}  # seconds, folder, isa, error: what the build did


def extension() -> ModuleType | None:
    """The compiled extension, built on the first call; None when it cannot be built or
    ``OPTBENCH_NO_CPP=1`` (one warning each time the answer is first None)."""
    if os.environ.get("OPTBENCH_NO_CPP", "") not in ("", "0"):
        _warn_once("OPTBENCH_NO_CPP is set: fused optimizers run the pure-torch path on the CPU")
        return None
    return _build()


@functools.cache
def _build() -> ModuleType | None:
    from torch.utils import cpp_extension

    t0 = time.perf_counter()
    try:
        name = build_name()
        folder = Path(cpp_extension._get_build_directory(name, verbose=False))
        module = cpp_extension.load(
            name=name,
            sources=[str(SOURCES / "bind.cpp"), str(SOURCES / "kernels.cpp")],
            extra_include_paths=[str(SOURCES)],
            with_cuda=False,
            extra_cflags=FLAGS,
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
    except Exception as err:  # no compiler, no ninja, a compile error
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        _BUILD.update(error=first)
        _warn_once(
            f"the CPU optimizer extension did not build ({type(err).__name__}: {first}); "
            "fused optimizers run the pure-torch path on the CPU"
        )
        return None
    _BUILD.update(seconds=time.perf_counter() - t0, folder=str(folder), isa=module.isa())
    return module


def build_info() -> dict[str, float | str]:
    """What the build did: ``seconds`` (the load, compile included if there was one),
    ``folder`` (the cache), ``isa`` (the kernels picked), or ``error``."""
    extension()
    return dict(_BUILD)


@functools.cache
def _warn_once(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def available() -> bool:
    """Whether the CPU kernels run: not under ``TRITON_INTERPRET`` (the tests' way to run
    the Triton kernels on the CPU) and the extension built. Checked once per step; then
    :func:`takes` per parameter."""
    from suite.optim.kernels import interpreting

    return not interpreting() and extension() is not None


def takes(row: tuple[Tensor | None, ...], state_from: int) -> bool:
    """Whether a CPU kernel can update ``row`` (p, g, state..., None for a state the
    update does not use): float32 or bfloat16, g of p's dtype, the state of one dtype,
    every tensor of p's shape, dense, laid out alike (walked in memory order). One pass,
    cheap checks first: this runs for every parameter at every step. Assumes
    :func:`available`."""
    p, g = row[0], row[1]
    if not p.is_cpu or p.dtype not in CPU_DTYPES or g.dtype != p.dtype:
        return False
    shape, state_dtype, contiguous = p.shape, None, True
    for i, t in enumerate(row):
        if t is None:
            continue
        if not t.is_cpu or t.shape != shape:
            return False
        if i >= state_from:
            state_dtype = state_dtype or t.dtype
            if t.dtype != state_dtype:
                return False
        contiguous = contiguous and t.is_contiguous()
    if state_dtype is not None and state_dtype not in CPU_DTYPES:
        return False
    if not contiguous:  # then dense and laid out alike?
        layout = _layout(p)
        return _dense(p) and all(_layout(t) == layout for t in row if t is not None)
    return True


def takes_8bit(p: Tensor, g: Tensor, state: dict[str, Tensor]) -> bool:
    """8-bit state as :class:`suite.optim.adam8bit.Adam8bit` makes it, every tensor
    contiguous (blocks are runs of the flattened tensor), p and g of one CPU dtype.
    Assumes :func:`available`."""
    names = ("exp_avg", "exp_avg_sq", "exp_avg_absmax", "exp_avg_sq_absmax")
    maps = [state[k] for k in ("exp_avg_qmap", "exp_avg_sq_qmap")]
    return (
        p.is_cpu
        and p.dtype in CPU_DTYPES
        and g.dtype == p.dtype
        and g.shape == p.shape
        and state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.uint8
        and all(t.is_cpu and t.is_contiguous() for t in (g, *maps, *(state[k] for k in names)))
        and p.is_contiguous()
        and all(t.dtype == torch.float32 and t.numel() == 256 for t in maps)
    )


def launch(kind: str, rows: list[tuple], **kw) -> None:
    """One CPU step over ``rows`` (one dtype per position, one step count): ``kind`` is
    ``adam`` (rows p, g, m, v, vmax or None), ``sgd`` (p, g, buffer or None) or
    ``adam8bit`` (p, g, codes and absmax of both moments, maps)."""
    {"adam": _adam, "sgd": _sgd, "adam8bit": _adam8bit}[kind](rows, **kw)


def _ptrs(tensors) -> list[int]:
    return [0 if t is None else t.data_ptr() for t in tensors]


def _adam(rows, *, amsgrad, sqrt_as_rsqrt=False, **scalars):
    p, g, m, v, vmax = zip(*rows, strict=True)
    extension().adam_step(
        _ptrs(p),
        _ptrs(g),
        _ptrs(m),
        _ptrs(v),
        _ptrs(vmax) if amsgrad else [],
        [t.numel() for t in p],
        p[0].dtype == torch.bfloat16,
        m[0].dtype == torch.bfloat16,
        *_adam_scalars(**scalars),
        amsgrad,
        sqrt_as_rsqrt,
    )


def _adam_scalars(*, decay, weight_decay, w1, beta2, w2, eps, neg_step_size,
                  bias_correction2_sqrt, decoupled, maximize) -> tuple[list[float], bool]:  # fmt: skip
    """The float scalars of the Adam kernels, in the order the C++ binding reads them,
    and whether the decay is L2 (added to the gradient): what both Adam bindings take."""
    floats = [
        decay if decoupled and weight_decay != 0 else 1.0,
        -1.0 if maximize else 1.0,
        weight_decay,
        w1,
        beta2,
        w2,
        eps,
        neg_step_size,
        bias_correction2_sqrt,
    ]
    return floats, not decoupled and weight_decay != 0


def _sgd(rows, *, neg_lr, momentum, w_g, weight_decay, first, nesterov, maximize):
    p, g, b = zip(*rows, strict=True)
    extension().sgd_step(
        _ptrs(p),
        _ptrs(g),
        _ptrs(b) if momentum != 0 else [],
        [t.numel() for t in p],
        p[0].dtype == torch.bfloat16,
        [-1.0 if maximize else 1.0, weight_decay, momentum, w_g, neg_lr],
        weight_decay != 0,
        first,
        nesterov,
    )


def _adam8bit(rows, **scalars):
    p, g, mc, vc, ma, va, mq, vq = zip(*rows, strict=True)
    m_lk, v_lk = cpu_lookup(mq[0]), cpu_lookup(vq[0])
    extension().adam8bit_step(
        _ptrs(p),
        _ptrs(g),
        _ptrs(mc),
        _ptrs(vc),
        _ptrs(ma),
        _ptrs(va),
        [t.numel() for t in p],
        p[0].dtype == torch.bfloat16,
        _ptrs(m_lk.tensors),
        m_lk.nan_code,
        _ptrs(v_lk.tensors),
        v_lk.nan_code,
        *_adam_scalars(**scalars),
    )


def encode(y: Tensor, qmap: Tensor, keep_positive: bool = False) -> Tensor:
    """The fused 8-bit step's codes of the flat, contiguous float32 CPU tensor ``y`` under
    ``qmap`` (what the step encodes, exposed for the tests): the pure path's
    ``quant._encode`` (then ``adam8bit.keep_positive_`` if ``keep_positive``)."""
    lk = cpu_lookup(qmap)
    codes = torch.empty(y.numel(), dtype=torch.uint8)
    extension().encode(
        y.data_ptr(), codes.data_ptr(), y.numel(), _ptrs(lk.tensors), lk.nan_code, keep_positive
    )
    return codes
