"""The training loop's overhead against a bare hand-written loop on the same model.

    python -m suite.bench.overhead [--task cnn --dataset digits] [--steps 200] [--repeats 3]

Both loops run the same task, model init, optimizer and batches in one process,
alternating, and the median wall time of each is compared. The suite's loop adds
the per-step loss check, logging (grad norm every log_every steps, JSONL appends),
progress callback and timing; both build the model and end with one evaluation.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from suite.optim.registry import get
from suite.tasks import build_task
from suite.train import LoopConfig, seed_everything, train


def bare_loop(task, optimizer_name: str, steps: int, seed: int) -> float:
    """Build, train, evaluate once at the end: the minimum any loop must do."""
    start = time.perf_counter()
    seed_everything(seed)
    model = task.build_model()
    opt = get(optimizer_name).build(task.param_groups(model, 0.01), lr=1e-3)
    model.train()
    for step in range(steps):
        loss = task.loss(model, task.batch(seed, step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    task.evaluate(model)
    return time.perf_counter() - start


def suite_loop(task, optimizer_name: str, steps: int, seed: int) -> float:
    """The same work through suite.train.train (schedule, checks, logging, one final eval)."""
    spec = get(optimizer_name)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = LoopConfig(steps=steps, seed=seed, log_every=10, eval_every=0)
        start = time.perf_counter()
        train(task, lambda groups: spec.build(groups, lr=1e-3), cfg, Path(tmp), weight_decay=0.01)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m suite.bench.overhead")
    parser.add_argument("--task", default="cnn")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--optimizer", default="adamw")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    task = build_task(args.task, dataset=args.dataset)
    bare, ours = [], []
    bare_loop(task, args.optimizer, 10, 0)  # warm-up
    for r in range(args.repeats):
        bare.append(bare_loop(task, args.optimizer, args.steps, r))
        ours.append(suite_loop(task, args.optimizer, args.steps, r))
    b, o = statistics.median(bare), statistics.median(ours)
    print(
        f"task {args.task}/{args.dataset}, optimizer {args.optimizer}, {args.steps} steps x {args.repeats}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"bare loop  : {b:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in bare)})")
    print(f"suite loop : {o:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in ours)})")
    print(f"overhead   : {100 * (o / b - 1):+.2f} %")


if __name__ == "__main__":
    main()
