"""`make bench-step`: the time of one optimizer step, for every registry entry, side by side.

    python -m suite.bench.step [--sizes 1e6 1e7 5e7] [--repeats 10] [--warmup 3]
                               [--only adamw torch_adamw ...] [--threads N] [--out table.md]
                               [--contended]

For each size, one set of float32 parameters shaped like a small transformer (four
layers of qkv/out/up/down matrices with their biases and two norm weights: almost every
value sits in a tensor of >= 4096 values, so 8-bit state applies) gets its gradients
once. Every entry then builds a fresh optimizer on those parameters (``lr=1e-3``;
SGD with ``momentum=0.9``), takes ``--warmup`` steps, and the median of ``--repeats``
timed steps is its ms/step. The timed steps are interleaved: each round steps every
entry once, so load from elsewhere on a shared machine spreads over all entries
(``--sequential``: one optimizer alive at a time, for a machine short of memory).
``torch_adamw`` (foreach) is always timed: it is the baseline of the ratio column.

Every size also times the machine's in-place memory bandwidth, ``a.add_(b)`` over as
many float32 values as the parameters (read a and b, write a: 12 bytes per value), in the
same rounds: the ``bandwidth`` row, and every entry's ``% bw`` is its GB/s over that.

``--contended``: each round times every entry (and the bandwidth) twice, quiet and with
a second process busy on one core (:mod:`suite.bench.contend`); ``ms contended`` is that
median and ``slowdown`` its ratio to the quiet one, measured in the same invocation.

Columns:
- ``state B/param``: ``suite.optim.state.state_bytes`` (every tensor in ``optimizer.state``)
  over the parameter count: 8 for 32-bit Adam, ~2.03 for 8-bit (codes + absmax + qmap).
- ``GB/s``: bytes moved / median time, where bytes moved is the least traffic a fully
  fused step needs: every parameter read and written, every gradient read, every state
  tensor read and written once, i.e. ``3 * param_bytes + 2 * state_bytes``. AdamW fp32:
  p, g, m, v read + p, m, v written = 28 B/param; SGD with momentum: 20 B/param; 8-bit
  Adam: 4 + 4 + 4 + 1 + 1 + 1 + 1 = 16 B/param plus twice the absmax (and qmap) bytes.
- ``% bw``: GB/s over the bandwidth row's GB/s at the same size (at 1M parameters the
  tensors fit in the L3 cache, so that is the cache's bandwidth).

An entry that fails to build or step (an optional library missing, an entry that needs
a CUDA device on a CPU machine) is a row with its error, never a crash. Optimizers with
modes (Schedule-Free) are put in training mode; Muon+AdamW splits the parameters by
shape (2-D to Muon). Entries whose step is torch.compile'd (torchao) compile during
the warmup steps, which are not timed.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

from suite.bench.contend import BusyCore
from suite.optim.entry import train_mode
from suite.optim.registry import REGISTRY, OptimSpec
from suite.optim.state import state_bytes
from suite.runner.env import cpu_model

BASELINE = "torch_adamw"
LAYERS = 4
BANDWIDTH = "bandwidth"  # the a.add_(b) row
COLUMNS = ["name", "impl", "params", "ms/step", "ms min", "ratio", "state B/param", "GB/s"]
COLUMNS += ["% bw", "ms contended", "slowdown", "error"]


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


def header(device: torch.device, contended: bool = False) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    fused = ""
    if device.type == "cpu":  # what the fused entries run on this CPU
        from suite.optim.kernels import cpu

        build = cpu.build_info()
        fused = (
            f" | fused CPU kernels: {build.get('isa', 'pure torch: ' + build.get('error', 'off'))}"
        )
    busy = f" | contended: a busy loop on core {max(os.sched_getaffinity(0))}" if contended else ""
    return (
        f"optimizer step benchmark | torch {torch.__version__} | {device.type}: {name} | "
        f"threads {torch.get_num_threads()}{fused}{busy} | "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )


def run(
    sizes: list[float],
    names: list[str],
    warmup: int,
    repeats: int,
    device: torch.device,
    interleave: bool = True,
    log=print,
    contended: bool = False,
) -> pd.DataFrame:
    rows = []
    with BusyCore() if contended else nullcontext() as busy:
        for size in sizes:
            for row in bench_size(size, names, warmup, repeats, device, interleave, busy):
                done = f"{row['ms/step']:9.2f} ms" if "ms/step" in row else row["error"]
                if "slowdown" in row:
                    done += f"  contended {row['ms contended']:9.2f} ms ({row['slowdown']:.2f}x)"
                log(f"  {row['name']:<22} {row['params']:>11,}  {done}")
                rows.append(row)
            gc.collect()  # this size's params and optimizers, before the next size
    table = pd.DataFrame(rows, columns=COLUMNS)
    if not contended:
        table = table.drop(columns=["ms contended", "slowdown"])
    base = table[table["name"] == BASELINE].set_index("params")["ms/step"]
    table["ratio"] = table["ms/step"] / table["params"].map(base)
    return table


def format_table(table: pd.DataFrame) -> str:
    shown = table.copy()
    for col, fmt in [
        ("ms/step", "{:.2f}"),
        ("ms min", "{:.2f}"),
        ("ratio", "{:.3g}x"),
        ("state B/param", "{:.3f}"),
        ("GB/s", "{:.2f}"),
        ("% bw", "{:.0f}%"),
        ("ms contended", "{:.2f}"),
        ("slowdown", "{:.2f}x"),
    ]:
        if col in shown:
            shown[col] = shown[col].map(lambda v, f=fmt: "" if pd.isna(v) else f.format(v))
    shown["params"] = shown["params"].map("{:,}".format)
    if not shown["error"].astype(bool).any():
        shown = shown.drop(columns="error")
    return shown.fillna("").to_string(index=False)


def to_markdown(table: pd.DataFrame, title: str) -> str:
    """A plain Markdown table (no tabulate dependency)."""
    shown = table.astype(object).where(table.notna(), "")
    lines = [
        f"# {title}",
        "",
        "| " + " | ".join(shown.columns) + " |",
        "|" + "|".join("---" for _ in shown.columns) + "|",
    ]
    for row in shown.itertuples(index=False):
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=float,
        default=[1e6, 1e7, 5e7],
        help="parameter counts (rounded to the model shape)",
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per entry")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (>= 1)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these registry entries")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="one entry at a time (less memory) instead of interleaved rounds",
    )
    parser.add_argument(
        "--contended",
        action="store_true",
        help="also time every entry with a second process busy on one core (slowdown column)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="also write the table: .csv or .md")
    args = parser.parse_args(argv)

    names = list(args.only or [*REGISTRY, *REFERENCES])
    valid = [*REGISTRY, *REFERENCES]
    unknown = [n for n in names if n not in valid]
    if unknown:
        parser.error(f"unknown entries {unknown}; valid: {', '.join(valid)}")
    if BASELINE not in names:
        names.insert(0, BASELINE)
    if args.out is not None and args.out.suffix not in (".csv", ".md"):
        parser.error("--out must end in .csv or .md")
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    title = header(device, args.contended)
    print(title, flush=True)
    table = run(
        args.sizes,
        names,
        args.warmup,
        args.repeats,
        device,
        interleave=not args.sequential,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        contended=args.contended,
    )
    print(
        f"median of {args.repeats} steps after {args.warmup} warmup; ratio: ms/step over "
        f"{BASELINE} at the same size; GB/s: (3 x param bytes + 2 x state bytes) / median; "
        f"% bw: GB/s over the {BANDWIDTH} row (a.add_(b), 12 B/value) at the same size"
        + ("; slowdown: contended / quiet median, same rounds" if args.contended else "")
    )
    print(format_table(table))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.suffix == ".csv":
            table.assign(environment=title).to_csv(args.out, index=False)
        else:
            args.out.write_text(to_markdown(table, title))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
