"""The training loop's overhead against a bare hand-written loop on the same model.

    python -m suite.bench.overhead [--task cnn --dataset digits] [--steps 200] [--repeats 3]
    python -m suite.bench.overhead --task fmnist_2c2d      # a conf/task config, real data
    python -m suite.bench.overhead --task lm_shakespeare --optimizer adamw_fused

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
from suite.runner.checkpoint import seed_everything
from suite.tasks import build_task, task_from_config
from suite.train import LoopConfig, train

CONF_TASKS = Path(__file__).resolve().parents[1] / "conf" / "task"


def load_task(name: str, dataset: str):
    """A ``conf/task/<name>.yaml`` config (real data from the data root, as a run reads
    it), else a task class of :data:`suite.tasks.TASKS` with ``dataset``."""
    config = CONF_TASKS / f"{name}.yaml"
    if config.is_file():
        from omegaconf import OmegaConf

        return task_from_config(OmegaConf.to_container(OmegaConf.load(config), resolve=True))
    return build_task(name, dataset=dataset)


def default_weight_decay(task) -> float:
    """0.01, or 0 for a task that refuses weight decay (DeepOBS's unregularized ones)."""
    return float(task.fixed_hparams.get("weight_decay", 0.01))


def bare_loop(task, optimizer_name: str, steps: int, seed: int, weight_decay: float) -> float:
    """Build, train, evaluate once at the end: the minimum any loop must do."""
    start = time.perf_counter()
    seed_everything(seed)
    model = task.build_model()
    opt = get(optimizer_name).build(task.param_groups(model, weight_decay), lr=1e-3)
    model.train()
    for step in range(steps):
        loss = task.loss(model, task.batch(seed, step))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    task.evaluate(model)
    return time.perf_counter() - start


def suite_loop(task, optimizer_name: str, steps: int, seed: int, weight_decay: float) -> float:
    """The same work through suite.train.train (schedule, checks, logging, one final eval)."""
    spec = get(optimizer_name)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = LoopConfig(steps=steps, seed=seed, log_every=10, eval_every=0)
        start = time.perf_counter()
        build = lambda groups: spec.build(groups, lr=1e-3)  # noqa: E731
        train(task, build, cfg, Path(tmp), weight_decay=weight_decay)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m suite.bench.overhead")
    parser.add_argument("--task", default="cnn", help="a conf/task name or a task class")
    parser.add_argument("--dataset", default="digits", help="for a task class only")
    parser.add_argument("--optimizer", default="adamw")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    task = load_task(args.task, args.dataset)
    wd = default_weight_decay(task)
    bare, ours = [], []
    bare_loop(task, args.optimizer, 10, 0, wd)  # warm-up
    for r in range(args.repeats):
        bare.append(bare_loop(task, args.optimizer, args.steps, r, wd))
        ours.append(suite_loop(task, args.optimizer, args.steps, r, wd))
    b, o = statistics.median(bare), statistics.median(ours)
    print(
        f"task {args.task}, optimizer {args.optimizer}, {args.steps} steps x {args.repeats}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"bare loop  : {b:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in bare)})")
    print(f"suite loop : {o:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in ours)})")
    print(f"overhead   : {100 * (o / b - 1):+.2f} %")


if __name__ == "__main__":
    main()
