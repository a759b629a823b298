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

import io
import math
import random
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from suite.diagnose import first_nonfinite, zero_second_moments
from suite.distributed import SINGLE, Dist
from suite.faults import maybe_kill, maybe_poison
from suite.measure import peak_memory, reset_peak_memory, state_bytes, tensor_bytes
from suite.optim.entry import describe, eval_mode, needs_closure, train_mode
from suite.optim.roles import with_roles
from suite.record import append_jsonl, read_jsonl, rewrite_jsonl, write_bytes
from suite.tasks.base import Task
from suite.telemetry import Telemetry, early_update_ratio, flat

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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    """Every generator's state as tensors and plain types, so that a checkpoint loads with
    ``torch.load(weights_only=True)`` (numpy's key array becomes a list of ints)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def diagnose(
    loss_history: list[float],
    step: int,
    cfg: LoopConfig,
    family: str,
    weight_decay: float,
    telemetry: list[dict] = (),
    zero_v: dict | None = None,
) -> str:
    """One line from the debugging checklist for a run that went non-finite at ``step``;
    ``zero_v``: :func:`suite.diagnose.zero_second_moments` of the optimizer then."""
    if zero_v:
        return (
            f"8-bit second moment decoded to 0 where the first moment is not "
            f"({zero_v['values']} values in {zero_v['tensors']} tensors): the step there is "
            f"lr*m/eps (up to {zero_v['worst_step_over_lr']:.1e} x lr at eps={zero_v['eps']:.1e}), "
            "so lr is not the cause and 32-bit state at the same lr keeps v; raise eps, keep "
            "these tensors 32-bit (min_8bit_size) or use an 8-bit optimizer that never rounds "
            "a positive v to 0 (the in-house adamw8bit)"
        )
    if cfg.amp == "fp16":
        return "non-finite under fp16: use a GradScaler (on by default) or amp=bf16, or lower lr"
    early = step < max(10, cfg.steps // 10)
    finite = [x for x in loss_history if math.isfinite(x)]
    rising = len(finite) >= 4 and finite[-1] > 1.5 * min(finite)
    if family == "adam" and weight_decay > 0:
        hint = "; Adam with weight decay adds L2 to the gradient: AdamW (decoupled) may be what was meant"
    else:
        hint = ""
    high = early_update_ratio(list(telemetry), within=max(10, cfg.steps // 10))
    if high:
        at, layer, ratio = high
        return (
            f"update/weight ratio {ratio:.1e} in {layer} at step {at}, far above ~1e-3: "
            f"lr is the suspect; lower lr 2-10x or add warmup{hint}"
        )
    if early or rising:
        return f"loss blew up early or kept rising: lower lr 2-10x or add warmup{hint}"
    return f"non-finite loss late in training: add grad_clip=1.0 or lower lr{hint}"


def train(
    task: Task,
    make_optimizer: Callable[[list[dict]], torch.optim.Optimizer],
    cfg: LoopConfig,
    run_dir: Path,
    *,
    weight_decay: float = 0.0,
    family: str = "",
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
    n_params = sum(p.numel() for p in params)

    # --- what the loop tracks; all of it is checkpointed so a resume continues exactly ---
    track: dict[str, Any] = {
        "step": 0,
        "train_seconds": 0.0,
        "losses": [],
        "step_times": [],
        "evals": [],
        "steps_to_target": None,
        "seconds_to_target": None,
        "window": [],
    }
    if cfg.resume and ckpt_path.exists():
        # Tensors and plain types only: a checkpoint someone else made never runs code here.
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        track = ckpt["track"]
        _set_rng_state(ckpt["rng"])
        # Drop events the killed run logged after its last checkpoint: they are redone.
        if dist.main:
            kept = (
                [e for e in read_jsonl(metrics_path) if e["step"] <= track["step"]]
                if metrics_path.exists()
                else []
            )
            rewrite_jsonl(metrics_path, kept)
            for event in kept:  # the mirrors get the whole history (a killed W&B file may not)
                log(event)
    elif metrics_path.exists() and dist.main:
        metrics_path.unlink()  # a fresh start in a reopened folder (resume=true, no checkpoint)

    def checkpoint() -> None:
        if not dist.main:
            return
        tmp = ckpt_path.with_suffix(".tmp")
        # Serialised in memory, then written by write_bytes: a full disk is an OSError naming
        # the file, not torch's "enforce fail at inline_container.cc", and the torn .tmp is freed.
        buffer = io.BytesIO()
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": _rng_state(),
                "track": track,
            },
            buffer,
        )
        write_bytes(tmp, buffer.getbuffer())
        maybe_kill("checkpoint", track["step"])
        tmp.replace(ckpt_path)  # atomic: a kill mid-save leaves the previous checkpoint intact

    def evaluate(step: int) -> dict[str, float]:
        if not dist.main:  # rank 0 evaluates; the others go on and wait in the next all-reduce
            return {}
        with eval_mode(optimizer):  # Schedule-Free evaluates its averaged weights
            metrics = task.evaluate(model)
        event = {"event": "eval", "step": step, "elapsed_s": track["train_seconds"], **metrics}
        append_jsonl(metrics_path, event)
        log(event)
        track["evals"].append(event)
        if track["steps_to_target"] is None and task.target.reached(metrics):
            track["steps_to_target"], track["seconds_to_target"] = step, track["train_seconds"]
        return metrics

    early_telemetry: list[dict] = []  # for the diagnosis of a run that diverges early
    status, diverged_at, diverged_layer, window = "ok", None, None, track["window"]
    evidence = None
    model.train()
    batches = task.train_batches(cfg.seed, start_step=track["step"])
    for step in range(track["step"], cfg.steps):
        maybe_poison(model, step)  # fault injection (OPTBENCH_NAN_AT); a no-op unless set
        t0 = time.perf_counter()
        batch = dist.shard(next(batches))
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
            loss = task.loss(ddp, batch)
        # One sync per step, needed to stop a diverged run at once (on every rank together).
        loss_value = dist.mean(loss.detach()).item()
        if not math.isfinite(loss_value):
            status, diverged_at = "diverged", step
            diverged_layer = first_nonfinite(model, task, batch, amp_dtype=amp_dtype)
            evidence = zero_second_moments(optimizer)  # 8-bit state that lost v
            break
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        logging_now = (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps
        grad_norm = None
        if cfg.grad_clip is not None or logging_now:
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
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if observe:  # its cost is reported apart, not in the step time
            event = telemetry.after_step(step + 1)
            dt -= telemetry.before_cost
            if step < max(10, cfg.steps // 10):
                early_telemetry.append(event)
            if dist.main:
                append_jsonl(metrics_path, event)
                log(flat(event))

        track["step"] = step + 1
        track["train_seconds"] += dt
        track["step_times"].append(dt)
        window.append(loss_value)
        track["losses"].append(loss_value)
        progress(step + 1, loss_value)
        if logging_now:
            event = {
                "event": "train",
                "step": step + 1,
                "loss": statistics.fmean(window),
                "lr": lr,
                "grad_norm": grad_norm,
                "step_time_s": statistics.median(track["step_times"][-len(window) :]),
            }
            if dist.main:
                append_jsonl(metrics_path, event)
                log(event)
            window.clear()
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 != cfg.steps:
            evaluate(step + 1)
        if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
            checkpoint()
        maybe_kill("step", step + 1)
        if stop():  # SIGINT/SIGTERM/preemption (suite.interrupt): resumable from here
            if cfg.checkpoint_every:
                checkpoint()
            status = "interrupted"
            break

    final = evaluate(track["step"]) if status == "ok" else {}
    if status == "ok" and cfg.checkpoint_every:
        checkpoint()
    tail = track["losses"][-max(1, cfg.log_every) :]
    return {
        "status": status,
        "steps": track["step"],
        "final": final,
        "best": _best(track["evals"], task),
        "final_train_loss": statistics.fmean(tail) if tail else None,
        "steps_to_target": track["steps_to_target"],
        "seconds_to_target": track["seconds_to_target"],
        "n_params": n_params,
        "optimizer_state_bytes": state_bytes(optimizer),
        "tensor_bytes": tensor_bytes(params, optimizer),
        **describe(optimizer),  # the class built and the state precision, measured
        "telemetry": telemetry.summary(track["step_times"]),
        **peak_memory(device),
        "median_step_time_s": statistics.median(track["step_times"])
        if track["step_times"]
        else None,
        "diverged_at_step": diverged_at,
        "diverged_layer": diverged_layer,
        "diagnosis": diagnose(
            track["losses"], diverged_at, cfg, family, weight_decay, early_telemetry, evidence
        )
        if diverged_at is not None
        else None,
        "train_seconds": track["train_seconds"],
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
