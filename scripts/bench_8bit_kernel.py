"""Side-by-side micro-benchmark of the fused CPU 8-bit AdamW kernel: this checkout's
sources against a git ref's (default ``main``), in one process, on the same tensors.

Both extensions are built from their ``suite/optim/kernels/cpp`` sources (torch's
extension cache, one folder per version). Each gets its own copy of one starting state
(p, codes, absmax after a few warm-up steps); every timed step feeds both the same
gradient, alternating which kernel runs first, and after each step their params, codes
and absmax must be equal bit for bit (the ref is itself bit-identical to the pure path:
tests/test_kernels.py). Reported: ns per value (median of the repeats, one thread) and
the ratio ref / new, measured in the same rounds.

    .venv/bin/python scripts/bench_8bit_kernel.py [--ref main] [--numel 1048576]
        [--repeats 31] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils import cpp_extension

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's suite, not an installed one

from suite.optim.kernels import cpu  # noqa: E402
from suite.optim.kernels._cpu_lookup import cpu_lookup  # noqa: E402
from suite.optim.kernels.adamw import step_scalars  # noqa: E402
from suite.optim.quant import dynamic_map, num_blocks  # noqa: E402

CPP = "suite/optim/kernels/cpp"


def build_ref(ref: str):
    """The extension built from ``ref``'s C++ sources (copied out of git)."""
    folder = Path(tempfile.mkdtemp(prefix="optbench_ref_cpp_"))
    names = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{ref}:{CPP}"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    for name in names:
        text = subprocess.run(
            ["git", "show", f"{ref}:{CPP}/{name}"],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        (folder / name).write_text(text)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    return cpp_extension.load(
        name=f"optbench_cpu_steps_ref_{commit}",
        sources=[str(folder / "bind.cpp"), str(folder / "kernels.cpp")],
        extra_include_paths=[str(folder)],
        extra_cflags=cpu.FLAGS,
        extra_ldflags=["-fopenmp"],
        verbose=False,
    )


def ptrs(ts):
    return [t.data_ptr() for t in ts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="main", help="git ref of the kernel to compare with")
    ap.add_argument("--numel", type=int, default=1 << 20)
    ap.add_argument("--repeats", type=int, default=31)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--l2", action="store_true", help="Adam's L2 decay instead of AdamW's")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # CPU time, not wall time: on a shared machine a step of ~10 ms often waits a
    # scheduler slice for another process, which wall time would count
    clock = time.thread_time if args.threads == 1 else time.process_time
    dtype = getattr(torch, args.dtype)
    kernels = {"ref": build_ref(args.ref), "new": cpu.extension()}
    print({k: (Path(m.__file__).parent.name, m.isa()) for k, m in kernels.items()})

    n, gen = args.numel, torch.Generator().manual_seed(0)
    mq, vq = dynamic_map(True), dynamic_map(False)
    mlk, vlk = cpu_lookup(mq), cpu_lookup(vq)
    p0 = (torch.randn(n, generator=gen) * 0.1).to(dtype)
    start = [p0, torch.zeros(n, dtype=torch.uint8), torch.zeros(n, dtype=torch.uint8)]
    start += [torch.zeros(num_blocks(n)), torch.zeros(num_blocks(n))]
    state = {k: [t.clone() for t in start] for k in kernels}
    lr, b1, b2, eps, wd = 1e-3, 0.9, 0.999, 1e-8, 0.0 if args.l2 else 1e-2
    times: dict[str, list[float]] = {k: [] for k in kernels}
    warm = 3
    for step in range(1, warm + args.repeats + 1):
        # gradients of a spread of scales (block maxima of several decades), some zeros
        g = torch.randn(n, generator=gen) * 10.0 ** torch.randint(-6, 0, (n,), generator=gen)
        g[torch.rand(n, generator=gen) < 0.01] = 0.0
        g = g.to(dtype)
        s = step_scalars(lr, b1, b2, eps, wd, float(step))
        scal, _ = cpu._adam_scalars(**s, decoupled=not args.l2, maximize=False)
        order = list(kernels) if step % 2 else list(kernels)[::-1]
        for name in order:
            p, mc, vc, ma, va = state[name]
            t0 = clock()
            kernels[name].adam8bit_step(
                [p.data_ptr()], [g.data_ptr()], [mc.data_ptr()], [vc.data_ptr()],
                [ma.data_ptr()], [va.data_ptr()], [n], dtype == torch.bfloat16,
                ptrs(mlk.tensors), mlk.nan_code, ptrs(vlk.tensors), vlk.nan_code,
                scal, args.l2,
            )  # fmt: skip
            if step > warm:
                times[name].append(clock() - t0)
        same = [torch.equal(a, b) for a, b in zip(state["ref"], state["new"], strict=True)]
        if not all(same):
            raise SystemExit(f"step {step}: ref and new differ in p/mc/vc/ma/va: {same}")
    med = {k: statistics.median(v) / n * 1e9 for k, v in times.items()}
    print(
        f"numel {n} {args.dtype} threads {args.threads} repeats {args.repeats}: "
        f"ref {med['ref']:.3f} ns/value, new {med['new']:.3f} ns/value, "
        f"ref/new {med['ref'] / med['new']:.3f} (min: ref {min(times['ref']) / n * 1e9:.3f}, "
        f"new {min(times['new']) / n * 1e9:.3f}); outputs bit-identical at every step"
    )


if __name__ == "__main__":
    main()
