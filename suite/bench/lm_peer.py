"""lm_shakespeare's model against nanoGPT's, step for step, in one process (issue 20).

    python -m suite.bench.lm_peer --nanogpt DIR [--rounds 12] [--steps 10] [--warmup 10]
                                  [--threads 1] [--bias] [--batch-size 12] [--block-size 64]

``DIR`` holds nanoGPT's ``model.py`` (karpathy/nanoGPT, fetched by the user; it is never
part of this repository). Both models are built at the same configuration (nanoGPT's
README CPU run: 4 layers x 4 heads x 128, block 64, batch 12, vocabulary 65, no
dropout): ours by :class:`suite.tasks.lm.LMTask` (``build_model`` and ``loss``, so any
change to the task is what is timed), nanoGPT's by its ``GPT(GPTConfig(...))`` with
``bias=False`` (its ``train.py`` default; ``--bias`` for ``True``, as GPT-2 has).

Each model gets its own ``torch.optim.AdamW`` (lr 1e-3, betas 0.9/0.99, wd 0.1, foreach)
and steps on the same random batches. One step is timed in three phases with
``time.perf_counter`` (the CPU runs synchronously): forward with the loss, backward, and
the update (grad-norm clip at 1.0, ``optimizer.step``, ``zero_grad``). After ``--warmup``
untimed steps of each, every round runs ``--steps`` steps of one model then of the
other, the order alternating (ABBA), so load from elsewhere falls on both alike. Printed:
the median ms of each phase and of the step per model, and ``ratio = ours / nanoGPT``
of the medians; ``per-round ratio`` is the range over rounds of the ratio of that
round's medians (a paired view, robust to drifting load).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

PHASES = ("forward", "backward", "update", "step")


def load_nanogpt(folder: Path):
    """nanoGPT's ``GPT`` and ``GPTConfig`` from ``folder/model.py`` (user-supplied code)."""
    path = folder / "model.py"
    if not path.is_file():
        raise SystemExit(f"--nanogpt {folder}: no model.py there (fetch karpathy/nanoGPT)")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.GPT, module.GPTConfig


def build(args: argparse.Namespace):
    """{name: (model, loss_fn)} at one configuration."""
    from suite.tasks.lm import LMTask

    shape = dict(n_layer=4, n_head=4, n_embd=128, block_size=args.block_size)
    task = LMTask(batch_size=args.batch_size, dropout=0.0, eval_windows=1, **shape)
    ours = task.build_model()
    gpt, gpt_config = load_nanogpt(args.nanogpt)
    with _quiet():
        peer = gpt(
            gpt_config(vocab_size=task.data.vocab_size, dropout=0.0, bias=args.bias, **shape)
        )
    return task.data.vocab_size, {
        "ours": (ours, lambda x, y: task.loss(ours, (x, y))),
        "nanogpt": (peer, lambda x, y: peer(x, y)[1]),
    }


class _quiet:
    """Silence nanoGPT's parameter-count print."""

    def __enter__(self):
        self.stdout, sys.stdout = sys.stdout, open("/dev/null", "w")  # noqa: SIM115

    def __exit__(self, *exc):
        sys.stdout.close()
        sys.stdout = self.stdout


def timed_step(model, loss_fn, optimizer, x, y) -> dict[str, float]:
    t0 = time.perf_counter()
    loss = loss_fn(x, y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    t3 = time.perf_counter()
    return {"forward": t1 - t0, "backward": t2 - t1, "update": t3 - t2, "step": t3 - t0}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nanogpt", type=Path, required=True, help="folder with nanoGPT's model.py")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--steps", type=int, default=10, help="steps of each model per round")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps of each model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--bias", action="store_true", help="nanoGPT with biases (as GPT-2)")
    args = p.parse_args(argv)
    for name in ("rounds", "steps", "threads", "batch_size", "block_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vocab, models = build(args)
    optimizers = {
        k: torch.optim.AdamW(
            m.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1, foreach=True
        )
        for k, (m, _) in models.items()
    }
    for m, _ in models.values():
        m.train()
    g = torch.Generator().manual_seed(0)
    shape = (args.batch_size, args.block_size)
    n = args.warmup + args.rounds * args.steps
    batches = [
        (torch.randint(vocab, shape, generator=g), torch.randint(vocab, shape, generator=g))
        for _ in range(n)
    ]
    times = {k: {ph: [] for ph in PHASES} for k in models}
    per_round = {k: [] for k in models}
    for k, (m, fn) in models.items():
        for x, y in batches[: args.warmup]:
            timed_step(m, fn, optimizers[k], x, y)
    order = list(models)
    for r in range(args.rounds):
        chunk = batches[args.warmup + r * args.steps : args.warmup + (r + 1) * args.steps]
        for k in order if r % 2 == 0 else order[::-1]:
            m, fn = models[k]
            steps = [timed_step(m, fn, optimizers[k], x, y) for x, y in chunk]
            for ph in PHASES:
                times[k][ph] += [s[ph] for s in steps]
            per_round[k].append(statistics.median(s["step"] for s in steps))
    params = {k: sum(p.numel() for p in m.parameters()) for k, (m, _) in models.items()}
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {shape}, "
        f"{args.rounds} rounds x {args.steps} steps each, nanoGPT bias={args.bias}"
    )
    print("| model | params | " + " | ".join(f"{ph} ms" for ph in PHASES) + " |")
    print("|---|---|" + "---|" * len(PHASES))
    med = {k: {ph: 1e3 * statistics.median(v) for ph, v in t.items()} for k, t in times.items()}
    for k in models:
        print(f"| {k} | {params[k]:,} | " + " | ".join(f"{med[k][ph]:.2f}" for ph in PHASES) + " |")
    print(
        "| ratio ours/nanoGPT | | "
        + " | ".join(f"{med['ours'][ph] / med['nanogpt'][ph]:.3f}" for ph in PHASES)
        + " |"
    )
    ratios = [a / b for a, b in zip(per_round["ours"], per_round["nanogpt"], strict=True)]
    print(
        f"per-round step ratio: median {statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}"
    )


if __name__ == "__main__":
    main()
