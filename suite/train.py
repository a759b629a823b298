"""The one training loop, readable top to bottom.

    seed -> model -> optimizer (+ schedule, scaler) -> [resume] ->
    for step: batch(seed, step) -> forward (AMP) -> backward -> clip -> step -> schedule
              log every `log_every`, evaluate every `eval_every`, checkpoint every
              `checkpoint_every`; a non-finite loss stops the run at once.

The loop never knows which optimizer family it drives: it receives a callable
that turns param groups into an optimizer. What it keeps and writes (the checkpointed
track, ``metrics.jsonl`` events, evaluations, checkpoints, the measured summary fields)
goes through a ``LoopRecord`` (suite/runner/loop_record.py), and to any mirrors (W&B)
through ``log``; what it saw at a non-finite loss, through a ``Divergence``
(suite/runner/diagnose.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from suite.optim.entry import needs_closure, train_mode
from suite.optim.roles import with_roles
from suite.runner.checkpoint import seed_everything
from suite.runner.diagnose import Divergence, divergence_fields
from suite.runner.distributed import SINGLE, Dist
from suite.runner.faults import maybe_kill, maybe_poison
from suite.runner.loop_record import LoopRecord
from suite.runner.peak_memory import reset_peak_memory
from suite.runner.telemetry import Telemetry
from suite.tasks.base import Task

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class LoopConfig:
    steps: int
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0  # 0: only at the end
    warmup_steps: int = 0
    schedule: str = "constant"  # "constant" | "warmup_cosine"
    min_lr_ratio: float = 0.1  # cosine floor as a fraction of the peak lr
    amp: str | None = None  # None | "bf16" | "fp16"
    grad_clip: float | None = None
    checkpoint_every: int = 0  # 0: no checkpoints
    resume: bool = False
    telemetry_every: int = 0  # 0: off; N: per-layer effective lr and update ratio every N steps

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"invalid steps: {self.steps} (must be >= 1)")
        if self.log_every < 1:
            raise ValueError(f"invalid log_every: {self.log_every} (must be >= 1)")
        if self.eval_every < 0 or self.checkpoint_every < 0 or self.warmup_steps < 0:
            raise ValueError("eval_every, checkpoint_every and warmup_steps must be >= 0")
        if self.telemetry_every < 0:
            raise ValueError(f"invalid telemetry_every: {self.telemetry_every} (must be >= 0)")
        if self.schedule not in ("constant", "warmup_cosine"):
            raise ValueError(f"unknown schedule {self.schedule!r}; valid: constant, warmup_cosine")
        if self.amp not in (None, *AMP_DTYPES):
            raise ValueError(f"invalid amp: {self.amp!r}; valid: null, bf16, fp16")
        if self.grad_clip is not None and not (self.grad_clip > 0):
            raise ValueError(f"invalid grad_clip: {self.grad_clip} (must be > 0 or null)")

    @property
    def early_steps(self) -> int:
        """The first tenth of the run, at least 10 steps: the divergence checklist reads the
        telemetry of these steps (a large update/weight ratio there points at the lr)."""
        return max(10, self.steps // 10)


def lr_factor(step: int, cfg: LoopConfig) -> float:
    """Multiplier of the peak lr at ``step``: linear warmup, then constant or cosine decay."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cosine


def train(
    task: Task,
    make_optimizer: Callable[[list[dict]], torch.optim.Optimizer],
    cfg: LoopConfig,
    run_dir: Path,
    *,
    weight_decay: float = 0.0,
    log: Callable[[dict], None] = lambda event: None,
    progress: Callable[[int, float], None] = lambda step, loss: None,
    dist: Dist = SINGLE,
    stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Train ``task`` for ``cfg.steps`` steps; return the summary fields the loop measured.

    Under data parallelism (``dist.world > 1``) every rank trains on its slice of the
    global batch and only rank 0 writes metrics, evaluations and checkpoints."""

    # --- build: the model's init depends only on the seed ---
    reset_peak_memory(task.device)  # before the model: the CPU peak is measured above this baseline
    seed_everything(cfg.seed)
    model = task.build_model().to(task.device)
    optimizer = make_optimizer(with_roles(model, task.param_groups(model, weight_decay)))
    train_mode(optimizer)  # optimizers with modes (Schedule-Free) start in training mode
    telemetry = Telemetry(model, optimizer, cfg.telemetry_every, early_steps=cfg.early_steps)
    closure_needed = needs_closure(optimizer)
    # DDP averages gradients in backward; `model` stays the bare module (eval, checkpoints).
    ddp = torch.nn.parallel.DistributedDataParallel(model) if dist.world > 1 else model
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    amp_dtype = AMP_DTYPES.get(cfg.amp)
    scaler = torch.amp.GradScaler(task.device.type, enabled=cfg.amp == "fp16")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}

    # --- what the loop tracks; all of it is checkpointed so a resume continues exactly ---
    run = LoopRecord(task, Path(run_dir), parts, resume=cfg.resume, dist=dist, log=log)
    status, divergence = "ok", None
    model.train()
    # Batches are a function of (seed, step): a resumed run sees the batches it would have seen.
    batches = task.train_batches(cfg.seed, start_step=run.track["step"])
    for step in range(run.track["step"], cfg.steps):
        maybe_poison(model, step)  # fault injection (OPTBENCH_NAN_AT); a no-op unless set
        t0 = time.perf_counter()
        batch = dist.shard(next(batches))
        with autocast(task.device, amp_dtype):
            loss = task.loss(ddp, batch)
        # One sync per step, needed to stop a diverged run at once (on every rank together).
        loss_value = dist.mean(loss.detach()).item()
        if not math.isfinite(loss_value):  # stop before the bad step touches the state
            status = "diverged"
            divergence = Divergence.seen(step, model, task, batch, optimizer, amp_dtype)
            break
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        logging_now = (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps
        grad_norm = None
        if cfg.grad_clip is not None or logging_now:  # the norm costs a sync: only when used
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or math.inf).item()
        lr = optimizer.param_groups[0]["lr"]
        observe = telemetry.due(step + 1)
        if observe:
            telemetry.before_step()
        if closure_needed:  # LBFGS-style: the optimizer re-evaluates the loss
            scaler.step(optimizer, partial(_reevaluate, task, ddp, batch, optimizer, amp_dtype))
        else:
            scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if task.device.type == "cuda":  # the step time must include the queued kernels
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if observe:  # its cost is reported apart, not in the step time
            run.record(telemetry.after_step(step + 1))
            dt -= telemetry.before_cost
        run.step_done(step + 1, loss_value, dt)
        progress(step + 1, loss_value)
        if logging_now:  # the mean loss since the last train event, not one noisy batch
            run.train_event(lr, grad_norm)
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 != cfg.steps:
            run.evaluate(step + 1)  # the last step's evaluation is the final one, below
        if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
            run.save()
        maybe_kill("step", step + 1)
        if stop():  # SIGINT/SIGTERM/preemption (suite.runner.interrupt): resumable from here
            if cfg.checkpoint_every:
                run.save()
            status = "interrupted"
            break

    final = run.evaluate(run.track["step"]) if status == "ok" else {}
    if status == "ok" and cfg.checkpoint_every:
        run.save()
    return {
        "status": status,
        **run.measured(final, params, telemetry, cfg.log_every),
        **divergence_fields(divergence, run.track["losses"], cfg.steps, cfg.amp, telemetry.early),
        "train_seconds": run.track["train_seconds"],
    }


def autocast(device: torch.device, amp_dtype: torch.dtype | None):
    """Mixed precision in ``amp_dtype`` on ``device``; full precision when None."""
    return torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()


def _reevaluate(task: Task, model, batch, optimizer, amp_dtype) -> torch.Tensor:
    """The closure an LBFGS-style optimizer calls: loss and gradients on the same batch."""
    with torch.enable_grad():
        optimizer.zero_grad(set_to_none=True)
        with autocast(task.device, amp_dtype):
            loss = task.loss(model, batch)
        loss.backward()
    return loss
