"""What the training loop keeps and writes, so that ``train()`` shows only the loop.

The loop's ``track`` (step, train seconds, losses, step times, evaluations, steps and
seconds to target, the losses since the last train event) is a plain dict: a checkpoint
saves it as is and a resume restores it, so a resumed run continues exactly. Around it,
:class:`LoopRecord` writes the events (rank 0 appends to ``metrics.jsonl`` and passes the
same event to the mirrors), evaluates and notes when the task's target is first reached,
saves checkpoints, and at the end reports the summary fields the loop measured
(see ``suite.record.Summary``).

Under data parallelism only rank 0 writes, evaluates and checkpoints; the other ranks keep
their own track, so that every rank stops at the same step.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from suite.optim.entry import describe, eval_mode
from suite.optim.state import state_bytes, tensor_bytes
from suite.record import append_jsonl
from suite.runner import checkpoint
from suite.runner.distributed import Dist
from suite.runner.peak_memory import peak_memory
from suite.runner.telemetry import Telemetry, flat
from suite.tasks.base import Task


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


class LoopRecord:
    """The track of one run and the folder it is written to (``metrics.jsonl``,
    ``checkpoint.pt``). ``parts`` maps names to the objects a checkpoint holds: ``model``,
    ``optimizer``, ``scheduler``, ``scaler``."""

    def __init__(
        self,
        task: Task,
        run_dir: Path,
        parts: dict[str, Any],
        *,
        resume: bool,
        dist: Dist,
        log: Callable[[dict], None],
    ) -> None:
        self.task, self.parts, self.dist, self.log = task, parts, dist, log
        self.metrics_path = Path(run_dir) / "metrics.jsonl"
        self.ckpt_path = Path(run_dir) / "checkpoint.pt"
        self.track = new_track()
        if resume and self.ckpt_path.exists():  # model, optimizer, ..., RNG states and track
            self.track = checkpoint.restore(self.ckpt_path, parts, task.device)
            if dist.main:
                checkpoint.trim_metrics(self.metrics_path, self.track["step"], log)
        elif self.metrics_path.exists() and dist.main:
            self.metrics_path.unlink()  # a fresh start in a reopened folder (resume=true, no checkpoint)

    def record(self, event: dict) -> None:
        """Rank 0 appends the event to metrics.jsonl; the mirrors get the same event."""
        if self.dist.main:
            append_jsonl(self.metrics_path, event)
            self.log(flat(event) if event["event"] == "telemetry" else event)

    def save(self) -> None:
        if self.dist.main:
            checkpoint.save(self.ckpt_path, self.parts, self.track)

    def evaluate(self, step: int) -> dict[str, float]:
        """Evaluate the model, record the event and note the first step the target is reached."""
        if not self.dist.main:  # rank 0 evaluates; the others go on and wait in the next all-reduce
            return {}
        track = self.track
        with eval_mode(self.parts["optimizer"]):  # Schedule-Free evaluates its averaged weights
            metrics = self.task.evaluate(self.parts["model"])
        event = {"event": "eval", "step": step, "elapsed_s": track["train_seconds"], **metrics}
        self.record(event)
        track["evals"].append(event)
        if track["steps_to_target"] is None and self.task.target.reached(metrics):
            track["steps_to_target"], track["seconds_to_target"] = step, track["train_seconds"]
        return metrics

    def step_done(self, step: int, loss: float, seconds: float) -> None:
        """Steps up to ``step`` are done; the last one had this (rank-mean) loss and time."""
        track = self.track
        track["step"] = step
        track["train_seconds"] += seconds
        track["step_times"].append(seconds)
        track["losses"].append(loss)
        track["window"].append(loss)

    def train_event(self, lr: float, grad_norm: float | None) -> None:
        """Record the mean loss over the steps since the last train event (not one noisy
        batch) and their median step time; start a new window."""
        track, window = self.track, self.track["window"]
        step_time = statistics.median(track["step_times"][-len(window) :])
        self.record(
            {
                "event": "train",
                "step": track["step"],
                "loss": statistics.fmean(window),
                "lr": lr,
                "grad_norm": grad_norm,
                "step_time_s": step_time,
            }
        )
        window.clear()

    def measured(self, final: dict, params: list, telemetry: Telemetry, log_every: int) -> dict:
        """The summary fields measured at the end of the loop (see suite.record.Summary)."""
        track, optimizer = self.track, self.parts["optimizer"]
        tail = track["losses"][-max(1, log_every) :]
        times = track["step_times"]
        return {
            "steps": track["step"],
            "final": final,
            "best": best(track["evals"]),
            "final_train_loss": statistics.fmean(tail) if tail else None,
            "steps_to_target": track["steps_to_target"],
            "seconds_to_target": track["seconds_to_target"],
            "n_params": sum(p.numel() for p in params),
            "optimizer_state_bytes": state_bytes(optimizer),
            "tensor_bytes": tensor_bytes(params, optimizer),
            **describe(optimizer),  # the class built and the state precision, measured
            "telemetry": telemetry.summary(times),
            **peak_memory(self.task.device),
            "median_step_time_s": statistics.median(times) if times else None,
        }


def best(evals: list[dict]) -> dict[str, float]:
    """Best value of each metric over evaluations: max for accuracies, min for losses."""
    out: dict[str, float] = {}
    for event in evals:
        for key, value in event.items():
            if key in ("event", "step", "elapsed_s") or not isinstance(value, (int, float)):
                continue
            higher_better = not any(w in key for w in ("loss", "ppl", "bpc", "error"))
            if key not in out or (value > out[key] if higher_better else value < out[key]):
                out[key] = value
    return out
