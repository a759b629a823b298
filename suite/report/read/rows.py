"""One run record -> one validated row: numbers, metrics, flattened hyperparameters.

Reads only what :mod:`suite.record` writes; a RecordError names the first bad field.
Column names: ``final_target`` / ``best_target`` are the task's target metric (a ``val/*``
metric) at the final evaluation / best over evaluations; ``final_test`` is the same
metric on the test split at the final evaluation (reported, never used to choose);
``final_train`` the same on the fixed train subset (eval mode).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from suite.record import RecordError

HP = "hp."  # prefix of the flattened-hyperparameter columns in the frames
TEST = "test/"  # reported at the selected configuration; never read to choose anything
NUMBER_KEYS = (
    "steps",
    "max_steps",
    "final_train_loss",
    "steps_to_target",
    "seconds_to_target",
    "n_params",
    "optimizer_state_bytes",
    "tensor_bytes",
    "peak_memory_bytes",
    "median_step_time_s",
    "wall_seconds",
    "diverged_at_step",
)


def one_line(text: object, limit: int = 240) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def to_float(value: Any, where: str) -> float:
    """A number from a record; "nan"/"inf" strings (how record.py stores them) are floats."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise RecordError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise RecordError(f"{where}: number out of range") from None
    if isinstance(value, str):  # record.py writes NaN/inf as "nan"/"inf"/"-inf"; nothing else
        try:
            x = float(value)
        except ValueError:
            x = 0.0
        if not math.isfinite(x):
            return x
    raise RecordError(f"{where}: expected a number, got {one_line(repr(value), 60)}")


def _metrics(value: Any, where: str, required: bool) -> dict[str, float]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{where}: expected an object of metrics, got {type(value).__name__}")
    return {str(k): to_float(v, f"{where}[{k!r}]") for k, v in value.items()}


def flatten_hparams(hparams: dict, prefix: str = "") -> dict[str, Any]:
    """Nested hyperparameters as flat scalars (ints as floats, lists as JSON text), e.g.
    {"lr": 1, "b": [0.9, 0.99], "x": {"y": 2}} -> {"lr": 1.0, "b": "[0.9, 0.99]", "x.y": 2.0}
    """
    flat: dict[str, Any] = {}
    for key, value in hparams.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_hparams(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value)
        elif isinstance(value, float) and not math.isfinite(value):
            flat[name] = str(value)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53:
            flat[name] = float(value)  # lr=1 and lr=1.0 are one setting
        else:
            flat[name] = value
    return flat


def hparams_label(flat: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt_hp(v)}" for k, v in sorted(flat.items())) or "-"


def _fmt_hp(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def run_row(folder: Path, s: dict) -> dict[str, Any]:
    """One validated row from a summary; a RecordError names the first bad field."""
    where = f"{folder / 'summary.json'}"
    for key in ("task", "optimizer"):
        if not isinstance(s[key], str) or not s[key]:
            raise RecordError(f"{where}: {key} must be a non-empty string, got {s[key]!r}")
    if not isinstance(s["hparams"], dict):
        raise RecordError(f"{where}: hparams must be an object, got {type(s['hparams']).__name__}")
    t = s["target"]
    if not (
        isinstance(t, dict)
        and isinstance(t.get("metric"), str)
        and t.get("direction") in ("max", "min")
    ):
        raise RecordError(
            f"{where}: target must be {{metric, value, direction: max|min}}, got {one_line(t, 80)}"
        )
    seed = s["seed"]
    if isinstance(seed, (dict, list)):
        raise RecordError(f"{where}: seed must be a scalar, got {type(seed).__name__}")
    ok = s["status"] == "ok"
    row: dict[str, Any] = {k: to_float(s.get(k), f"{where}: {k}") for k in NUMBER_KEYS}
    final = _metrics(s["final"], f"{where}: final", required=ok)
    best = _metrics(s["best"], f"{where}: best", required=ok)
    metric = t["metric"]
    base = metric.split("/", 1)[1] if "/" in metric else None  # "val/acc" -> "acc"
    flat = flatten_hparams(s["hparams"])
    row.update(
        folder=str(folder),
        status=s["status"],
        task=s["task"],
        optimizer=s["optimizer"],
        impl=str(s["impl"]),
        family=str(s["family"]),
        state_bits=s["state_bits"] if isinstance(s["state_bits"], int) else None,
        seed=seed,
        hparams=hparams_label(flat),
        group=json.dumps(
            [s["task"], s["optimizer"], row["max_steps"], flat], sort_keys=True, default=str
        ),
        target_metric=metric,
        target_value=to_float(t.get("value"), f"{where}: target.value"),
        target_direction=t["direction"],
        final_target=final.get(metric, math.nan),
        best_target=best.get(metric, math.nan),
        final_train=final.get(f"train/{base}", math.nan) if base else math.nan,
        final_test=final.get(f"{TEST}{base}", math.nan) if base else math.nan,
        test_metric=f"{TEST}{base}" if base else "",
        peak_memory_kind=str(s["peak_memory_kind"]),
        diagnosis=s["diagnosis"],
        error=s["error"],
    )
    row["gap"] = row["final_train"] - row["final_test"]  # train/<m> - test/<m>, final eval
    row["reached"] = math.isfinite(row["steps_to_target"])
    n_params = row["n_params"]
    row["state_bytes_per_param"] = (
        row["optimizer_state_bytes"] / n_params if n_params > 0 else math.nan
    )
    row.update({f"{HP}{k}": v for k, v in flat.items()})
    row.update({f"final.{k}": v for k, v in final.items()})
    row.update({f"best.{k}": v for k, v in best.items()})
    return row
