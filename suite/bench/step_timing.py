"""One size of the step benchmark (:mod:`suite.bench.step`): float32 parameters shaped
like a small transformer with preset gradients, every entry built on them and timed in
interleaved rounds (or one at a time), quiet and optionally beside a busy core, with the
``a.add_(b)`` bandwidth row timed in the same rounds."""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from contextlib import nullcontext

import torch

from suite.bench.contend import BusyCore
from suite.optim.entry import train_mode
from suite.optim.registry import REGISTRY, OptimSpec
from suite.optim.state import state_bytes

LAYERS = 4
BANDWIDTH = "bandwidth"  # the a.add_(b) row


def layer_shapes(d: int) -> list[tuple[int, ...]]:
    """One transformer layer of width ``d``: 12 d^2 + 11 d values in ten tensors."""
    return [(d, 3 * d), (3 * d,), (d, d), (d,), (d, 4 * d), (4 * d,), (4 * d, d), (d,), (d,), (d,)]


def make_params(numel: float, device: torch.device) -> list[torch.Tensor]:
    """About ``numel`` float32 parameters (width rounded to 16), each with a preset gradient."""
    d = max(16, round(math.sqrt(numel / (12 * LAYERS)) / 16) * 16)
    gen = torch.Generator().manual_seed(0)
    params = []
    for _ in range(LAYERS):
        for shape in layer_shapes(d):
            p = torch.randn(shape, generator=gen).to(device)
            p.grad = (torch.randn(shape, generator=gen) * 1e-2).to(device)
            params.append(p)
    return params


def hyperparameters(spec: OptimSpec) -> dict:
    hyper = {"lr": 1e-3}
    if spec.family == "sgd":
        hyper["momentum"] = 0.9
    return hyper


def deepspeed_cpu_adam(params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """DeepSpeed's CPUAdam (the optimizer of its CPU offload), as AdamW (weight_decay
    0.01, torch's default) in float32: a reference row, when deepspeed is installed (it
    JIT-compiles its C++ op on first use, ~3 minutes here, cached as torch's extensions)."""
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    try:
        from deepspeed.ops.adam import DeepSpeedCPUAdam
    except ImportError as err:
        raise RuntimeError(f"deepspeed is not installed ({err}); pip install deepspeed") from None
    return DeepSpeedCPUAdam(params, lr=1e-3, weight_decay=1e-2, adamw_mode=True)


# Reference rows that are not registry entries: name -> (impl, builder on the params).
REFERENCES = {"deepspeed_cpuadam": ("deepspeed", deepspeed_cpu_adam)}


def _error(err: Exception) -> str:
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:120]}"


def bench_size(
    size: float,
    names: list[str],
    warmup: int,
    repeats: int,
    device: torch.device,
    interleave: bool = True,
    busy: BusyCore | None = None,
) -> list[dict]:
    """One row per entry at ``size`` parameters, and the bandwidth row first. Interleaved
    (the default), every entry is built and warmed up first, then each of the ``repeats``
    rounds times one step of every entry in turn: a burst of load from elsewhere on the
    machine lands on all entries alike, not on one. Sequential holds one optimizer at a
    time (less memory). With ``busy``, each round is timed quiet, then again with the
    busy core running (module docstring)."""
    params = make_params(size, device)
    n = sum(p.numel() for p in params)
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def impl(name: str) -> str:
        return REFERENCES[name][0] if name in REFERENCES else REGISTRY[name].impl

    rows = {name: {"name": name, "impl": impl(name), "params": n} for name in names}
    modes = ["quiet"] + (["contended"] if busy else [])
    times: dict[str, dict[str, list[float]]] = {m: {k: [] for k in names} for m in modes}
    for m in modes:
        times[m][BANDWIDTH] = []
    a, b = torch.zeros(n, device=device), torch.ones(n, device=device)

    def start(name: str) -> torch.optim.Optimizer | None:
        """Build and warm up (>= 1 step, so the state exists); None on an error."""
        try:
            if name in REFERENCES:
                if device.type != "cpu":
                    raise RuntimeError(f"a CPU optimizer; this bench runs on {device}")
                opt = REFERENCES[name][1](params)
            else:
                spec = REGISTRY[name]
                if spec.requires and spec.requires != device.type:
                    raise RuntimeError(
                        f"needs a {spec.requires} device; this bench runs on {device}"
                    )
                opt = spec.build(params, **hyperparameters(spec))
            train_mode(opt)
            for _ in range(max(warmup, 1)):
                opt.step()
            sync()
            return opt
        except Exception as err:  # an optional library missing, an entry not written yet
            rows[name]["error"] = _error(err)
            return None

    def timed_step(name: str, step, mode: str) -> bool:
        try:
            t0 = time.perf_counter()
            step()
            sync()
            times[mode][name].append(time.perf_counter() - t0)
            return True
        except Exception as err:
            rows[name]["error"] = _error(err)
            return False

    def timed_round(steps: dict) -> None:
        """Every entry of ``steps`` (name -> step function) once per mode; failed ones
        are dropped from ``steps``."""
        for mode in modes:
            with busy.running() if mode == "contended" else nullcontext():
                for name, step in list(steps.items()):
                    if not timed_step(name, step, mode):
                        del steps[name]

    def finish(name: str, opt: torch.optim.Optimizer) -> None:
        state, median = state_bytes(opt), statistics.median(times["quiet"][name])
        rows[name].update(
            {
                "ms/step": median * 1e3,
                "ms min": min(times["quiet"][name]) * 1e3,
                "state B/param": state / n,
                "GB/s": (3 * param_bytes + 2 * state) / median / 1e9,
                "error": "",
            }
        )
        if busy:
            contended = statistics.median(times["contended"][name])
            rows[name].update({"ms contended": contended * 1e3, "slowdown": contended / median})

    bandwidth = {BANDWIDTH: lambda: a.add_(b)}
    for _ in range(max(warmup, 1)):
        a.add_(b)
    if interleave:
        opts = {name: start(name) for name in names}
        opts = {name: opt for name, opt in opts.items() if opt is not None}
        steps = {**bandwidth, **{name: opt.step for name, opt in opts.items()}}
        for _ in range(repeats):
            timed_round(steps)
        for name, opt in opts.items():
            if name in steps:
                finish(name, opt)
        del opts, steps
    else:
        for _ in range(repeats):
            timed_round(dict(bandwidth))
        for name in names:
            opt = start(name)
            steps = {name: opt.step} if opt is not None else {}
            for _ in range(repeats if steps else 0):
                timed_round(steps)
            if steps:
                finish(name, opt)
            del opt, steps
            gc.collect()
    bw = {"name": BANDWIDTH, "impl": "a.add_(b)", "params": n, "error": ""}
    for mode, key in (("quiet", "ms/step"), ("contended", "ms contended")):
        if mode in modes:
            bw[key] = statistics.median(times[mode][BANDWIDTH]) * 1e3
    bw.update(
        {"ms min": min(times["quiet"][BANDWIDTH]) * 1e3, "GB/s": 12 * n / bw["ms/step"] / 1e6}
    )
    if busy:
        bw["slowdown"] = bw["ms contended"] / bw["ms/step"]
    out = [bw, *rows.values()]
    for row in out:
        if "GB/s" in row:
            row["% bw"] = 100 * row["GB/s"] / bw["GB/s"]
    return out
