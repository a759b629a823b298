"""The one training loop, readable top to bottom.

    seed -> model -> optimizer (+ schedule, scaler) -> [resume] ->
    for step: batch(seed, step) -> forward (AMP) -> backward -> clip -> step -> schedule
              log every `log_every`, evaluate every `eval_every`, checkpoint every
              `checkpoint_every`; a non-finite loss stops the run at once.

The loop never knows which optimizer family it drives: it receives a callable
that turns param groups into an optimizer. Everything it measures goes to the
run record through ``recorder`` (see suite/record.py) and to any mirrors
(W&B) through ``log``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from suite.optim.entry import describe, eval_mode, needs_closure, train_mode
from suite.optim.roles import with_roles
from suite.optim.state import state_bytes, tensor_bytes
from suite.record import append_jsonl
from suite.runner import checkpoint
from suite.runner.checkpoint import seed_everything
from suite.runner.diagnose import checklist, first_nonfinite, zero_second_moments
from suite.runner.distributed import SINGLE, Dist
from suite.runner.faults import maybe_kill, maybe_poison
from suite.runner.peak_memory import peak_memory, reset_peak_memory
from suite.runner.telemetry import Telemetry, flat
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
    run_dir = Path(run_dir)
    metrics_path, ckpt_path = run_dir / "metrics.jsonl", run_dir / "checkpoint.pt"
    device = task.device

    # --- build: the model's init depends only on the seed ---
    reset_peak_memory(device)  # before the model: the CPU peak is measured above this baseline
    seed_everything(cfg.seed)
    model = task.build_model().to(device)
    optimizer = make_optimizer(with_roles(model, task.param_groups(model, weight_decay)))
    train_mode(optimizer)  # optimizers with modes (Schedule-Free) start in training mode
    telemetry = Telemetry(model, optimizer, cfg.telemetry_every)
    closure_needed = needs_closure(optimizer)
    # DDP all-reduces (averages) gradients in backward; `model` stays the bare module for
    # evaluation and checkpoints.
    ddp = torch.nn.parallel.DistributedDataParallel(model) if dist.world > 1 else model
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    amp_dtype = AMP_DTYPES.get(cfg.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}

    # --- what the loop tracks; all of it is checkpointed so a resume continues exactly ---
    track = new_track()
    if cfg.resume and ckpt_path.exists():
        track = checkpoint.restore(ckpt_path, parts, device)
        if dist.main:
            checkpoint.trim_metrics(metrics_path, track["step"], log)
    elif metrics_path.exists() and dist.main:
        metrics_path.unlink()  # a fresh start in a reopened folder (resume=true, no checkpoint)

    def save() -> None:
        if dist.main:
            checkpoint.save(ckpt_path, parts, track)

    def record(event: dict) -> None:  # rank 0 writes; the mirrors get the same event
        if dist.main:
            append_jsonl(metrics_path, event)
            log(flat(event) if event["event"] == "telemetry" else event)

    def evaluate(step: int) -> dict[str, float]:
        if not dist.main:  # rank 0 evaluates; the others go on and wait in the next all-reduce
            return {}
        with eval_mode(optimizer):  # Schedule-Free evaluates its averaged weights
            metrics = task.evaluate(model)
        event = {"event": "eval", "step": step, "elapsed_s": track["train_seconds"], **metrics}
        record(event)
        track["evals"].append(event)
        if track["steps_to_target"] is None and task.target.reached(metrics):
            track["steps_to_target"], track["seconds_to_target"] = step, track["train_seconds"]
        return metrics

    early_telemetry: list[dict] = []  # for the diagnosis of a run that diverges early
    status, diverged_at, diverged_layer, zero_v, window = "ok", None, None, None, track["window"]
    model.train()
    # Batches are a function of (seed, step): a resumed run sees the batches it would have seen.
    batches = task.train_batches(cfg.seed, start_step=track["step"])
    for step in range(track["step"], cfg.steps):
        maybe_poison(model, step)  # fault injection (OPTBENCH_NAN_AT); a no-op unless set
        t0 = time.perf_counter()
        batch = dist.shard(next(batches))
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
            loss = task.loss(ddp, batch)
        # One sync per step, needed to stop a diverged run at once (on every rank together).
        loss_value = dist.mean(loss.detach()).item()
        if not math.isfinite(loss_value):  # stop before the bad step touches the state
            status, diverged_at = "diverged", step
            diverged_layer = first_nonfinite(model, task, batch, amp_dtype=amp_dtype)
            zero_v = zero_second_moments(optimizer)  # 8-bit state that lost v
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
        if device.type == "cuda":  # the step time must include the queued kernels
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if observe:  # its cost is reported apart, not in the step time
            event = telemetry.after_step(step + 1)
            dt -= telemetry.before_cost
            if step < max(10, cfg.steps // 10):
                early_telemetry.append(event)
            record(event)

        track["step"] = step + 1
        track["train_seconds"] += dt
        track["step_times"].append(dt)
        track["losses"].append(loss_value)
        window.append(loss_value)
        progress(step + 1, loss_value)
        if logging_now:  # the mean over the window, not one noisy batch
            step_time = statistics.median(track["step_times"][-len(window) :])
            record(train_event(step + 1, statistics.fmean(window), lr, grad_norm, step_time))
            window.clear()
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 != cfg.steps:
            evaluate(step + 1)
        if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
            save()
        maybe_kill("step", step + 1)
        if stop():  # SIGINT/SIGTERM/preemption (suite.runner.interrupt): resumable from here
            if cfg.checkpoint_every:
                save()
            status = "interrupted"
            break

    final = evaluate(track["step"]) if status == "ok" else {}
    if status == "ok" and cfg.checkpoint_every:
        save()
    diagnosis = (
        checklist(track["losses"], diverged_at, cfg.steps, cfg.amp, early_telemetry, zero_v)
        if diverged_at is not None
        else None
    )
    return {
        "status": status,
        **measured(task, track, final, optimizer, params, telemetry, cfg.log_every),
        "diverged_at_step": diverged_at,
        "diverged_layer": diverged_layer,
        "diagnosis": diagnosis,
        "train_seconds": track["train_seconds"],
    }


def new_track() -> dict[str, Any]:
    """The loop's state besides model and optimizer (a checkpoint saves it as is)."""
    return {
        "step": 0,
        "train_seconds": 0.0,
        "losses": [],
        "step_times": [],
        "evals": [],
        "steps_to_target": None,
        "seconds_to_target": None,
        "window": [],  # losses since the last train event
    }


def train_event(step: int, loss: float, lr: float, grad_norm, step_time_s: float) -> dict:
    return {
        "event": "train",
        "step": step,
        "loss": loss,
        "lr": lr,
        "grad_norm": grad_norm,
        "step_time_s": step_time_s,
    }


def measured(task, track: dict, final: dict, optimizer, params, telemetry, log_every: int) -> dict:
    """The summary fields measured at the end of the loop (see suite.record.Summary)."""
    tail = track["losses"][-max(1, log_every) :]
    times = track["step_times"]
    return {
        "steps": track["step"],
        "final": final,
        "best": _best(track["evals"], task),
        "final_train_loss": statistics.fmean(tail) if tail else None,
        "steps_to_target": track["steps_to_target"],
        "seconds_to_target": track["seconds_to_target"],
        "n_params": sum(p.numel() for p in params),
        "optimizer_state_bytes": state_bytes(optimizer),
        "tensor_bytes": tensor_bytes(params, optimizer),
        **describe(optimizer),  # the class built and the state precision, measured
        "telemetry": telemetry.summary(times),
        **peak_memory(task.device),
        "median_step_time_s": statistics.median(times) if times else None,
    }


def _reevaluate(task: Task, model, batch, optimizer, amp_dtype) -> torch.Tensor:
    """The closure an LBFGS-style optimizer calls: loss and gradients on the same batch."""
    with torch.enable_grad():
        optimizer.zero_grad(set_to_none=True)
        autocast = torch.autocast(task.device.type, dtype=amp_dtype) if amp_dtype else None
        with autocast or nullcontext():
            loss = task.loss(model, batch)
        loss.backward()
    return loss


def _best(evals: list[dict], task: Task) -> dict[str, float]:
    """Best value of each metric over evaluations: max for accuracies, min for losses."""
    best: dict[str, float] = {}
    for event in evals:
        for key, value in event.items():
            if key in ("event", "step", "elapsed_s") or not isinstance(value, (int, float)):
                continue
            higher_better = not any(w in key for w in ("loss", "ppl", "bpc", "error"))
            if key not in best or (value > best[key] if higher_better else value < best[key]):
                best[key] = value
    return best
