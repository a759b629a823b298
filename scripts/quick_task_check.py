"""Train one task with torch AdamW in a plain loop and print its metrics (CPU, minutes).

A stand-in until the suite's own loop lands: it only proves a task's defaults
reach its target. Example::

    .venv/bin/python scripts/quick_task_check.py cnn --lr 3e-3 --set dataset=digits
    .venv/bin/python scripts/quick_task_check.py lm --lr 1e-3 --set data_root=../shared/data
"""

from __future__ import annotations

import argparse
import ast
import math
import time

import torch

from suite.tasks import build_task


def parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string such as a dataset name


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("task")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="task arguments")
    p.add_argument("--steps", type=int, default=None, help="default: the task's default_steps")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    kwargs = dict(kv.split("=", 1) for kv in args.set)
    task = build_task(args.task, **{k: parse_value(v) for k, v in kwargs.items()})
    steps = args.steps or task.default_steps
    torch.manual_seed(args.seed)
    model = task.build_model()
    opt = torch.optim.AdamW(task.param_groups(model, args.weight_decay), lr=args.lr)

    # Linear warmup, then cosine decay to 10% of the peak.
    def lr_at(s: int) -> float:
        if s < args.warmup:
            return args.lr * (s + 1) / args.warmup
        frac = (s - args.warmup) / max(1, steps - args.warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    n_params = sum(p.numel() for p in model.parameters())
    print(f"{task.name}: {n_params:,} params, {steps} steps, target {task.target}", flush=True)
    train_time, reached, t0 = 0.0, None, time.perf_counter()
    for step, batch in enumerate(task.train_batches(args.seed)):
        if step == steps:
            break
        t = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = task.loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        train_time += time.perf_counter() - t
        if not math.isfinite(loss.item()):
            raise SystemExit(f"diverged at step {step}: loss {loss.item()}")
        if (step + 1) % args.eval_every == 0 or step + 1 == steps:
            m = task.evaluate(model)
            if reached is None and task.target.reached(m):
                reached = (step + 1, train_time)
            shown = " ".join(f"{k}={v:.4f}" for k, v in m.items())
            print(
                f"step {step + 1:5d} loss {loss.item():.4f} train_s {train_time:6.1f} {shown}",
                flush=True,
            )
    print(
        f"done: {steps} steps, {train_time:.1f} s training, {time.perf_counter() - t0:.1f} s wall; "
        f"target {task.target.metric} {task.target.direction} {task.target.value}: "
        + (f"reached at step {reached[0]} ({reached[1]:.1f} s)" if reached else "NOT reached")
    )


if __name__ == "__main__":
    main()
