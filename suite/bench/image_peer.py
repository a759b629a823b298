"""The suite's training step against a bare PyTorch loop of the same timm model (issue 20).

    python -m suite.bench.image_peer [--workload cnn_fashion vit_fashion] [--rounds 12]
                                     [--steps 10] [--warmup 10] [--threads 1]

The image counterpart of :mod:`suite.bench.lm_peer`, at the CPU tier's sizes
(``suite/conf/protocol/cpu.yaml``: CNN width 8; ViT 48 wide, 3 deep, 3 heads, patches
of 7; batch 64). One process, ``--threads`` threads, two loops on two copies of the
same model (the same seed, so the same init):

- ``suite``: :func:`suite.train.train` itself, as a run calls it (``log_every=25`` as
  the tier, no evaluation until the end, the registry's ``torch_adamw_fused`` at lr 1e-3
  and weight decay 0.01 on the task's parameter groups). Its step is the wall time from
  one ``progress`` callback to the next: everything the loop does per step (batch
  indexing and augmentation, the loss, the ``.item()`` divergence check, zero_grad,
  backward, the grad norm and JSONL line every 25 steps, the scheduler, bookkeeping).
- ``bare``: ``F.cross_entropy(model(x), y)``, ``backward``, ``AdamW(fused=True).step``,
  ``zero_grad(set_to_none=True)`` on the same batch tensors (built beforehand by
  ``task.batch``), the same parameter groups and hyperparameters. The math is the suite's:
  its loss at every step must equal the suite's (checked, printed as ``max |dloss|``; each
  loop keeps its own global-RNG stream, which ViT's stochastic depth draws from).

The bare loop runs inside the suite's ``progress`` callback, outside the suite's timed
interval, so the two interleave in one process: after ``--warmup`` untimed steps of each,
round r runs ``--steps`` steps of each loop, suite first in even rounds and bare first in
odd ones (S B B S S B ...). Printed: the median ms per step of each loop over all timed
steps, and ``ratio``: the median over rounds of (that round's suite median / that round's
bare median), a paired figure that load drifting between rounds cancels from, with its 95%
bootstrap interval over rounds (:func:`scipy.stats.bootstrap`, percentile).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from suite.bench.overhead import load_task
from suite.optim.registry import get
from suite.runner.checkpoint import seed_everything
from suite.train import LoopConfig, train

# The CPU tier's sizes (suite/conf/protocol/cpu.yaml), train-side only.
WORKLOADS = {
    "cnn_fashion": {"width": 8, "batch_size": 64},
    "vit_fashion": {"embed_dim": 48, "depth": 3, "num_heads": 3, "patch_size": 7, "batch_size": 64},
    "fmnist_2c2d": {"arch": "2c2d", "batch_size": 128},  # DeepOBS as defined
}
OPTIMIZER, LR, WEIGHT_DECAY, LOG_EVERY = "torch_adamw_fused", 1e-3, 0.01, 25


def build_task(workload: str, **sizes):
    """The workload's task at the tier's sizes (``sizes`` override them), small evals."""
    task = load_task(workload, "")
    args = {"name": task.family, "dataset": task.dataset, **WORKLOADS[workload], **sizes}
    args |= {"eval_size": 250, "eval_train_size": 250, "eval_batch_size": 250}
    from suite.tasks import task_from_config

    return task_from_config(args)


def compare(task, rounds: int, steps: int, warmup: int, seed: int = 0) -> dict:
    """Interleaved step times (s) of both loops and their per-step losses."""
    n = warmup + rounds * steps
    batches = [task.batch(seed, s) for s in range(n)]
    seed_everything(seed)
    model = task.build_model()
    groups = task.param_groups(model, WEIGHT_DECAY)
    opt = torch.optim.AdamW(groups, lr=LR, fused=True)
    model.train()
    # The bare loop's own global-RNG stream (ViT's stochastic depth draws from it), started
    # where the suite's starts: right after seeding and building the model.
    rng = {"bare": torch.get_rng_state()}
    bare = {"times": [], "losses": [], "rounds": []}
    suite = {"times": [], "losses": [], "rounds": []}

    def bare_steps(chunk):
        rng["suite"] = torch.get_rng_state()
        torch.set_rng_state(rng["bare"])
        times = []
        for x, y in chunk:
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - t0)
            bare["losses"].append(loss.detach())
        rng["bare"] = torch.get_rng_state()
        torch.set_rng_state(rng["suite"])
        return times

    # which loop runs each timed chunk: round r is (S, B) when r is even, (B, S) when odd
    order = [c for r in range(rounds) for c in (("S", "B") if r % 2 == 0 else ("B", "S"))]
    state = {"next": 0, "exit": None}

    def run_bare_until_suite():
        while state["next"] < len(order) and order[state["next"]] == "B":
            r = state["next"] // 2
            chunk = batches[warmup + r * steps : warmup + (r + 1) * steps]
            times = bare_steps(chunk)
            bare["times"] += times
            bare["rounds"].append(statistics.median(times))
            state["next"] += 1

    def progress(step: int, loss: float) -> None:
        entry = time.perf_counter()
        suite["losses"].append(loss)
        if step > warmup:
            suite["times"].append(entry - state["exit"])
        if step == warmup:
            bare_steps(batches[:warmup])
            run_bare_until_suite()
        elif step > warmup and (step - warmup) % steps == 0:
            suite["rounds"].append(statistics.median(suite["times"][-steps:]))
            state["next"] += 1
            run_bare_until_suite()
        state["exit"] = time.perf_counter()

    cfg = LoopConfig(steps=n, seed=seed, log_every=LOG_EVERY, eval_every=0)
    spec = get(OPTIMIZER)
    with tempfile.TemporaryDirectory() as tmp:
        train(
            task,
            lambda g: spec.build(g, lr=LR),
            cfg,
            Path(tmp),
            weight_decay=WEIGHT_DECAY,
            progress=progress,
        )
    bare["losses"] = [float(v) for v in bare["losses"]]
    return {"suite": suite, "bare": bare}


def paired_ratio(suite_rounds, bare_rounds, seed: int = 0) -> tuple[float, float, float]:
    """Median over rounds of the per-round ratio suite/bare, and its 95% bootstrap interval."""
    ratios = np.asarray(suite_rounds) / np.asarray(bare_rounds)
    res = stats.bootstrap(
        (ratios,),
        np.median,
        n_resamples=5000,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return float(np.median(ratios)), float(ci.low), float(ci.high)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--steps", type=int, default=10, help="steps of each loop per round")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps of each loop")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    for name in ("rounds", "steps", "warmup", "threads"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} must be >= 1, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{args.rounds} rounds x {args.steps} steps each, warm-up {args.warmup}"
    )
    print("| workload | suite ms | bare ms | ratio suite/bare | 95% CI | max abs dloss |")
    print("|---|---|---|---|---|---|")
    for workload in args.workload:
        out = compare(build_task(workload), args.rounds, args.steps, args.warmup)
        s, b = out["suite"], out["bare"]
        ms, mb = statistics.median(s["times"]), statistics.median(b["times"])
        ratio, low, high = paired_ratio(s["rounds"], b["rounds"])
        dloss = max(abs(x - y) for x, y in zip(s["losses"], b["losses"], strict=True))
        print(
            f"| {workload} | {1e3 * ms:.2f} | {1e3 * mb:.2f} | {ratio:.3f} | "
            f"{low:.3f}-{high:.3f} | {dloss:.2g} |"
        )


if __name__ == "__main__":
    main()
