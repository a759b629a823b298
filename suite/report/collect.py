"""Run records -> pandas frames: one row per run, one row per group, the loss curves.

Reads only what :mod:`suite.record` writes. Every run folder found ends up in
exactly one place: a row of ``runs`` (status ``ok``, record well formed) or a
row of ``problems`` (diverged, failed, still running, missing or malformed),
with a one-line reason. Nothing is dropped silently.

A *group* is one task x optimizer x step budget x hyperparameter setting; its
seeds are aggregated as mean, std (ddof=1) and n.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from suite.record import RecordError, find_runs, read_jsonl, read_summary

HP = "hp."  # prefix of the flattened-hyperparameter columns in the frames
BASELINES = ("adamw", "torch_adamw")  # the 32-bit AdamW baseline, in order of preference
NUMBER_KEYS = (
    "steps",
    "max_steps",
    "final_train_loss",
    "steps_to_target",
    "seconds_to_target",
    "n_params",
    "optimizer_state_bytes",
    "peak_memory_bytes",
    "median_step_time_s",
    "wall_seconds",
    "diverged_at_step",
)
PROBLEM_COLUMNS = ["folder", "status", "task", "optimizer", "seed", "step", "reason"]


@dataclass
class Records:
    """Everything the report shows, read from the run folders."""

    runs: pd.DataFrame  # one row per ok run
    curves: pd.DataFrame  # train events of the ok runs: folder, group, step, loss
    problems: pd.DataFrame  # one row per run not in the tables (PROBLEM_COLUMNS)
    notes: list[str] = field(default_factory=list)  # non-fatal remarks, one line each


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


def _run_row(folder: Path, s: dict) -> dict[str, Any]:
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
    row: dict[str, Any] = {k: to_float(s[k], f"{where}: {k}") for k in NUMBER_KEYS}
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
        final_test=final.get(f"test/{base}", math.nan) if base else math.nan,
        peak_memory_kind=str(s["peak_memory_kind"]),
        diagnosis=s["diagnosis"],
        error=s["error"],
    )
    # Generalization gap: train minus test of the target's metric (test where it exists).
    test = row["final_test"] if math.isfinite(row["final_test"]) else row["final_target"]
    row["gap"] = row["final_train"] - test
    row["reached"] = math.isfinite(row["steps_to_target"])
    n_params = row["n_params"]
    row["state_bytes_per_param"] = (
        row["optimizer_state_bytes"] / n_params if n_params > 0 else math.nan
    )
    row.update({f"{HP}{k}": v for k, v in flat.items()})
    row.update({f"final.{k}": v for k, v in final.items()})
    row.update({f"best.{k}": v for k, v in best.items()})
    return row


def _train_events(path: Path) -> list[tuple[float, float]]:
    """(step, loss) of every train event; RecordError on a malformed one."""
    out = []
    for i, ev in enumerate(read_jsonl(path), 1):
        if ev.get("event") == "train":
            where = f"{path}: train event {i}"
            out.append(
                (
                    to_float(ev.get("step"), f"{where}: step"),
                    to_float(ev.get("loss"), f"{where}: loss"),
                )
            )
        elif ev.get("event") == "eval":
            to_float(ev.get("step"), f"{path}: eval event {i}: step")
    return out


def _problem(
    folder: Path, status: str, reason: str, s: dict | None = None, step: Any = None
) -> dict:
    """A row of the not-in-tables list; what the summary says (if any) fills task/optimizer/step."""
    s = s if isinstance(s, dict) else {}
    if step is None:
        at = s.get("diverged_at_step")
        step = s.get("steps") if at is None or (isinstance(at, float) and math.isnan(at)) else at
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    return {
        "folder": str(folder),
        "status": status,
        "task": one_line(s.get("task", "")) or "-",
        "optimizer": one_line(s.get("optimizer", "")) or "-",
        "seed": one_line(s.get("seed", "")) if s.get("seed") is not None else "-",
        "step": one_line(step) if step is not None else "-",
        "reason": one_line(reason),
    }


def _last_step(folder: Path) -> Any:
    try:
        steps = [st for st, _ in _train_events(folder / "metrics.jsonl")]
        return int(steps[-1]) if steps and math.isfinite(steps[-1]) else None
    except (OSError, ValueError, RecursionError):  # RecordError is a ValueError
        return None


def _not_ok(folder: Path, s: dict) -> dict:
    """A diverged, failed or running run, listed with its own words (and its group if readable)."""
    why = s["diagnosis"] or s["error"] or ("still running" if s["status"] == "running" else "")
    why = one_line(why) if why else "(no diagnosis recorded)"
    try:
        return _problem(folder, s["status"], why, s) | {"group": _run_row(folder, s)["group"]}
    except RecordError as e:
        return _problem(folder, s["status"], f"{why}; record also malformed: {e}", s)


def _read_one(folder: Path, rows: list, problems: list, curves: list, notes: list) -> None:
    if not (folder / "summary.json").is_file():
        reason = "no summary.json: the run never finished (or is still running)"
        problems.append(_problem(folder, "missing/incomplete", reason, step=_last_step(folder)))
        return
    s = row = None
    try:
        s = read_summary(folder)
        if s["status"] != "ok":
            problems.append(_not_ok(folder, s))
            return
        row = _run_row(folder, s)
        metrics_path = folder / "metrics.jsonl"
        events = _train_events(metrics_path) if metrics_path.is_file() else None
    except RecordError as e:
        group = {"group": row["group"]} if row else {}
        problems.append(_problem(folder, "malformed", str(e), s) | group)
        return
    except (OSError, ValueError, RecursionError) as e:  # undecodable bytes, absurd nesting
        problems.append(_problem(folder, "unreadable", f"{type(e).__name__}: {e}"))
        return
    if events is None:
        notes.append(f"{folder}: no metrics.jsonl; in the tables, but no loss curve")
    else:
        curves.extend((row["folder"], row["group"], st, loss) for st, loss in events)
    rows.append(row)


def _drop_duplicates(rows: list[dict], problems: list[dict]) -> list[dict]:
    """The same group and seed twice (e.g. two copies of a runs folder): keep the first."""
    seen: dict[tuple, str] = {}
    kept = []
    for row in rows:
        key = (row["group"], json.dumps(row["seed"], default=str))
        if key in seen:
            reason = f"duplicate of {seen[key]} (same group and seed); only the first is counted"
            problems.append(
                _problem(Path(row["folder"]), "duplicate", reason, row) | {"group": row["group"]}
            )
        else:
            seen[key] = row["folder"]
            kept.append(row)
    return kept


def _check_targets(rows: list[dict], problems: list[dict]) -> list[dict]:
    """Runs of a task must agree on its target; one that disagrees with most is set aside."""
    by_task: dict[str, Counter] = {}
    for r in rows:
        by_task.setdefault(r["task"], Counter())[_target_key(r)] += 1
    kept = []
    for r in rows:
        common = by_task[r["task"]].most_common(1)[0][0]
        if _target_key(r) == common:
            kept.append(r)
        else:
            theirs, ours = _fmt_target(_target_key(r)), _fmt_target(common)
            reason = f"target {theirs} differs from the task's other runs' {ours}"
            problems.append(
                _problem(Path(r["folder"]), "inconsistent", reason, r) | {"group": r["group"]}
            )
    return kept


def _fmt_target(key: tuple) -> str:
    metric, value, direction = key
    return f"{metric} {'>=' if direction == 'max' else '<='} {value}"


def _target_key(r: dict) -> tuple:
    return (r["target_metric"], repr(r["target_value"]), r["target_direction"])  # repr: nan == nan


def collect(roots: list[Path]) -> Records:
    """Read every run folder under ``roots``; a root that holds no runs is a RecordError."""
    folders: list[Path] = []
    for root in roots:
        found = find_runs(Path(root))
        if not found:
            raise RecordError(
                f"{root}: holds no run records (no config.yaml or summary.json below it)"
            )
        folders.extend(found)
    rows: list[dict] = []
    problems: list[dict] = []
    curves: list[tuple] = []
    notes: list[str] = []
    unique = {f.resolve(): f for f in reversed(folders)}  # one folder named twice counts once
    for folder in sorted(unique.values()):
        _read_one(folder, rows, problems, curves, notes)
    rows = _check_targets(_drop_duplicates(rows, problems), problems)
    kept = {r["folder"] for r in rows}
    runs = pd.DataFrame(rows)
    curves_df = pd.DataFrame(curves, columns=["folder", "group", "step", "loss"])
    curves_df = curves_df[curves_df["folder"].isin(kept)].reset_index(drop=True)
    probs = pd.DataFrame(problems, columns=PROBLEM_COLUMNS + ["group"])
    return Records(
        runs, curves_df, probs.sort_values("folder", kind="stable").reset_index(drop=True), notes
    )


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample std; NaN propagates (a NaN seed is shown, never skipped)."""
    if len(values) == 0:
        return math.nan, math.nan
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return float(np.mean(values)), std


AGG_COLUMNS = (
    "final_train_loss",
    "final_target",
    "best_target",
    "final_train",
    "gap",
    "state_bytes_per_param",
    "peak_memory_bytes",
    "median_step_time_s",
    "wall_seconds",
)


def aggregate(records: Records) -> pd.DataFrame:
    """One row per group: mean/std over seeds of every AGG_COLUMNS entry, n, targets reached."""
    runs = records.runs
    if runs.empty:
        return pd.DataFrame()
    hp_cols = [c for c in runs.columns if c.startswith(HP)]
    excluded = (
        Counter(records.problems["group"].dropna()) if not records.problems.empty else Counter()
    )
    out = []
    for key, g in runs.groupby("group", sort=False):
        first = g.iloc[0]
        row: dict[str, Any] = {
            c: first[c]
            for c in (
                "task",
                "optimizer",
                "impl",
                "family",
                "state_bits",
                "max_steps",
                "hparams",
                "group",
            )
        }
        row.update({c: first[c] for c in ("target_metric", "target_value", "target_direction")})
        row.update({c: first[c] for c in hp_cols})
        row["peak_memory_kind"] = "/".join(sorted(set(g["peak_memory_kind"])))
        row["n"] = len(g)
        row["seeds"] = ",".join(str(s) for s in g["seed"])
        row["excluded"] = excluded.get(key, 0)
        for col in AGG_COLUMNS:
            row[f"{col}_mean"], row[f"{col}_std"] = _mean_std(g[col].to_numpy(float))
        hit = g[g["reached"]]
        row["reached"] = len(hit)
        for col in ("steps_to_target", "seconds_to_target"):
            row[f"{col}_mean"], row[f"{col}_std"] = _mean_std(hit[col].to_numpy(float))
        out.append(row)
    agg = pd.DataFrame(out)
    hp_sort = [c for c in hp_cols if agg[c].map(lambda v: isinstance(v, (int, float))).all()]
    return agg.sort_values(
        ["task", "optimizer", "max_steps", *hp_sort, "hparams"], kind="stable"
    ).reset_index(drop=True)


def baseline_optimizer(runs: pd.DataFrame, task: str) -> str | None:
    """The 32-bit AdamW entry run on ``task``: in-house ``adamw`` first, else ``torch_adamw``."""
    present = set(runs.loc[runs["task"] == task, "optimizer"]) if not runs.empty else set()
    return next((name for name in BASELINES if name in present), None)
