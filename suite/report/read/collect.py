"""Run folders -> the frames the report shows: one row per run, the loss curves, problems.

Reads only what :mod:`suite.record` writes. Every run folder found ends up in
exactly one place: a row of ``runs`` (status ``ok``, record well formed) or a
row of ``problems`` (diverged, failed, still running, missing or malformed),
with a one-line reason. Nothing is dropped silently.

A row is built by :mod:`suite.report.read.rows`; groups of seeds by :mod:`suite.report.compute.aggregate`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from suite.record import RecordError, find_runs, read_jsonl, read_summary
from suite.report.read.rows import one_line, run_row, to_float

PROBLEM_COLUMNS = ["folder", "status", "task", "optimizer", "seed", "step", "reason"]


@dataclass
class Records:
    """Everything the report shows, read from the run folders."""

    runs: pd.DataFrame  # one row per ok run
    curves: pd.DataFrame  # train events of the ok runs: folder, group, step, loss
    problems: pd.DataFrame  # one row per run not in the tables (PROBLEM_COLUMNS)
    notes: list[str] = field(default_factory=list)  # non-fatal remarks, one line each
    # eval events of the ok runs: folder, group, step, value of the run's target metric (val)
    evals: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["folder", "group", "step", "value"])
    )


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
        return _problem(folder, s["status"], why, s) | {"group": run_row(folder, s)["group"]}
    except RecordError as e:
        return _problem(folder, s["status"], f"{why}; record also malformed: {e}", s)


def _read_one(
    folder: Path, rows: list, problems: list, curves: list, notes: list, evals: list
) -> None:
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
        row = run_row(folder, s)
        metrics_path = folder / "metrics.jsonl"
        events = _train_events(metrics_path) if metrics_path.is_file() else None
        metric = row["target_metric"]
        target_evals = [
            (row["folder"], row["group"], float(ev["step"]), to_float(ev[metric], metric))
            for ev in (read_jsonl(metrics_path) if events is not None else [])
            if ev.get("event") == "eval" and metric in ev
        ]
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
        evals.extend(target_evals)
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
    """Runs of a task must agree on its target's metric and direction; one that disagrees
    with most is set aside ("inconsistent": its numbers measure something else). Runs that
    agree on the metric but not on its value are all kept: the value moved (a target
    committed after some runs were made), which :func:`stale_targets` names."""
    by_task: dict[str, Counter] = {}
    for r in rows:
        by_task.setdefault(r["task"], Counter())[_metric_key(r)] += 1
    kept = []
    for r in rows:
        common = by_task[r["task"]].most_common(1)[0][0]
        if _metric_key(r) == common:
            kept.append(r)
        else:
            theirs, ours = _fmt_target(_target_key(r)), f"{common[0]} ({common[1]})"
            reason = f"target {theirs} differs from the task's other runs' {ours}"
            problems.append(
                _problem(Path(r["folder"]), "inconsistent", reason, r) | {"group": r["group"]}
            )
    return kept


def stale_targets(rows: list[dict], committed: dict[str, float] | None = None) -> list[str]:
    """One line per task whose kept runs carry more than one target value (or, with
    ``committed`` ``{task: value}``, a value other than the committed one), naming each value
    with the optimizers whose runs carry it. Every run stays in the tables: a stale target
    is flagged, never a reason to drop a run."""
    values: dict[str, dict[tuple, set]] = {}
    for r in rows:
        values.setdefault(r["task"], {}).setdefault(_target_key(r), set()).add(r["optimizer"])
    lines = []
    for task, by_value in sorted(values.items()):
        now = committed.get(task) if committed else None
        if now is None:
            stale = by_value if len(by_value) > 1 else {}
        else:
            stale = {k: o for k, o in by_value.items() if k[1] != repr(float(now))}
        if not stale:
            continue
        named = "; ".join(
            f"{_fmt_target(k)} ({', '.join(sorted(o))})" for k, o in sorted(stale.items())
        )
        if now is not None:
            lines.append(
                f"stale baseline targets on {task}: {named}, not the committed {float(now)!r}; "
                "these runs are kept and scored against the committed target"
            )
        else:
            lines.append(
                f"stale targets on {task}: the runs carry different target values, {named}; "
                "all are kept (rerun the older ones against the committed target)"
            )
    return lines


def _fmt_target(key: tuple) -> str:
    metric, value, direction = key
    return f"{metric} {'>=' if direction == 'max' else '<='} {value}"


def _metric_key(r: dict) -> tuple:
    return (r["target_metric"], r["target_direction"])


def _target_key(r: dict) -> tuple:
    return (r["target_metric"], repr(r["target_value"]), r["target_direction"])  # repr: nan == nan


def collect(roots: list[Path], check_targets: bool = True) -> Records:
    """Read every run folder under ``roots``; a root that holds no runs is a RecordError.

    ``check_targets=False`` keeps runs whose recorded target differs from their task's other
    runs (a caller that scores against committed targets: records made before a target
    changed are stale baselines, never a reason to drop a candidate's runs)."""
    folders: list[Path] = []
    skipped: list[str] = []  # symlinked folders already read (a loop or a second name)
    for root in roots:
        found = find_runs(Path(root), skipped)
        if not found:
            raise RecordError(
                f"{root}: holds no run records (no config.yaml or summary.json below it)"
            )
        folders.extend(found)
    rows: list[dict] = []
    problems: list[dict] = []
    curves: list[tuple] = []
    notes: list[str] = []
    evals: list[tuple] = []
    notes.extend(f"skipped {s}" for s in skipped)
    unique = {f.resolve(): f for f in reversed(folders)}  # one folder named twice counts once
    for folder in sorted(unique.values()):
        _read_one(folder, rows, problems, curves, notes, evals)
    rows = _drop_duplicates(rows, problems)
    if check_targets:
        rows = _check_targets(rows, problems)
    notes.extend(stale_targets(rows))
    kept = {r["folder"] for r in rows}
    runs = pd.DataFrame(rows)
    curves_df = pd.DataFrame(curves, columns=["folder", "group", "step", "loss"])
    curves_df = curves_df[curves_df["folder"].isin(kept)].reset_index(drop=True)
    probs = pd.DataFrame(problems, columns=PROBLEM_COLUMNS + ["group"])
    evals_df = pd.DataFrame(evals, columns=["folder", "group", "step", "value"])
    evals_df = evals_df[evals_df["folder"].isin(kept)].reset_index(drop=True)
    probs = probs.sort_values("folder", kind="stable").reset_index(drop=True)
    return Records(runs, curves_df, probs, notes, evals_df)


def completed_runs(roots: list[Path]) -> pd.DataFrame:
    """The ok runs under ``roots`` (:attr:`Records.runs`); none is a :class:`RecordError`."""
    runs = collect(roots).runs
    if runs.empty:
        raise RecordError(f"no completed runs under {', '.join(map(str, roots))}")
    return runs
