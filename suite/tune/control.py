"""The reference AdamW control of ``make compare``: rerun beside the candidate, interleaved.

Seconds on a shared machine depend on its load at the time, so a candidate's seconds are
comparable only with runs made in the same stretch of time on the same machine. ``make
compare`` therefore reruns the reference (the committed baseline's AdamW at its committed
hyperparameters and budget) at the candidate's rerun seeds, alternating with the candidate:
candidate s1, control s1, candidate s2, control s2, ... The order and the clock times of
every run go to ``<out>/control/<task>/timeline.json`` (run folders relative to ``<out>``); the control's records to
``<out>/control/<task>/<reference>/reruns/s<seed>/``.

Step-time ratio, per seed ``r_s = t_cand,s / t_ctrl,s`` (each run's median step time): the
paired comparison of ``log t`` by seed (:func:`suite.report.compute.claims.paired`), reported as
``exp(mean_s log r_s)`` with the bootstrap 95 % interval of the mean, exponentiated.
Seconds to target: the ``elapsed_s`` of the first evaluation at or beyond the committed
target (a miss is a miss, never a time at the budget).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from suite import trust
from suite.record import atomic_write_text, read_jsonl, read_summary
from suite.report.compute.claims import paired
from suite.report.read.scored import by_seed, scored_runs
from suite.report.read.studies import find_studies
from suite.report.read.targets import Target
from suite.tune.study import rerun_seed
from suite.tune.study_config import StudyConfig, StudyError, check_optimizer_overrides

REFERENCES = ("torch_adamw_fused", "torch_adamw", "adamw")  # first committed one is used
TIMELINE = "timeline.json"


def pick_reference(baselines: Path, tasks: list[str], wanted: str | None = None) -> str:
    """The reference optimizer: ``wanted`` if committed on every task, else the first of
    :data:`REFERENCES` that is; StudyError naming what is committed otherwise."""
    have: dict[str, set[str]] = {}
    for st in find_studies([baselines]):
        have.setdefault(st.task, set()).add(st.optimizer)
    common = set.intersection(*(have.get(t, set()) for t in tasks)) if tasks else set()
    if wanted is not None:
        if wanted not in common:
            raise StudyError(
                f"reference {wanted!r} has no committed study on every task of {baselines}; "
                f"valid: {', '.join(sorted(common)) or 'none'}"
            )
        return wanted
    for name in REFERENCES:
        if name in common:
            return name
    raise StudyError(
        f"no reference AdamW ({', '.join(REFERENCES)}) committed on every task of {baselines}"
    )


def control_config(candidate: StudyConfig, reference: str, out: Path) -> StudyConfig:
    """The control's study config: the candidate's budget, the reference's entry."""
    folder = out / "control" / candidate.task / reference
    return replace(candidate, optimizer=reference, out=folder, storage=None, config_dir=None)


def committed_overrides(baselines: Path, control: StudyConfig) -> list[str]:
    """The reference's selected overrides from its committed ``study.json``, checked to set
    only the reference's hyperparameters to plain values (nothing read runs unchecked)."""
    folder = baselines / control.task / control.optimizer
    studies = find_studies([folder])
    if len(studies) != 1:
        raise StudyError(f"{folder}: expected one committed study, found {len(studies)}")
    overrides = list(studies[0].meta["selected"]["overrides"])
    return check_optimizer_overrides(control, overrides, "selected", str(folder / "study.json"))


def _root(timeline: Path) -> Path:
    return timeline.parents[2]  # <out>/control/<task>/timeline.json


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def interleaved(control: StudyConfig, control_overrides: list[str], timeline: Path):
    """A ``reruns_by`` for :func:`suite.tune.study.tune`: per seed the candidate, then the
    control; writes the timeline (atomic, after every run) and returns the candidate's rows."""

    def reruns_by(cfg: StudyConfig, best, log=print) -> list[dict]:
        events, rows = [], []
        sides = (("candidate", cfg, best.user_attrs["overrides"]),)
        sides += (("control", control, control_overrides),)
        for seed in cfg.rerun_seeds:
            for who, c, overrides in sides:
                started, t0 = _now(), time.perf_counter()
                row, ran = rerun_seed(c, seed, overrides, lambda line, w=who: log(f"[{w}] {line}"))
                events.append(
                    {
                        "who": who,
                        "optimizer": c.optimizer,
                        "seed": seed,
                        "run_dir": str((c.out / row["run_dir"]).relative_to(_root(timeline))),
                        "ran_now": ran,
                        "started_utc": started,
                        "ended_utc": _now(),
                        "seconds": time.perf_counter() - t0,
                    }
                )
                timeline.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(timeline, json.dumps({"runs": events}, indent=2) + "\n")
                if who == "candidate":
                    rows.append(row)
        return rows

    return reruns_by


def _seconds_to_target(run: Path, target: Target) -> float | None:
    for e in read_jsonl(run / "metrics.jsonl"):
        v = e.get(target.metric)
        if e.get("event") == "eval" and isinstance(v, int | float) and target.reached(float(v)):
            return float(e["elapsed_s"])
    return None


def _median_s(values: list[float | None]) -> str:
    hit = [v for v in values if v is not None]
    med = f"{np.median(hit):.3g} s" if hit else "-"
    return f"{med} ({len(hit)}/{len(values)} reached)"


def timing_line(timeline: Path, target: Target) -> str:
    """One clause on seconds from the interleaved runs of ``timeline``."""
    runs = json.loads(timeline.read_text())["runs"]
    root = _root(timeline)
    side = {
        w: {r["seed"]: trust.inside(root, r["run_dir"], "run_dir") for r in runs if r["who"] == w}
        for w in ("candidate", "control")
    }
    seeds = sorted(set(side["candidate"]) & set(side["control"]))
    if not seeds:
        return "no interleaved control runs"
    step = {w: {s: read_summary(side[w][s]).get("median_step_time_s") for s in seeds} for w in side}
    ok = [
        s
        for s in seeds
        if all(isinstance(step[w][s], int | float) and step[w][s] > 0 for w in step)
    ]
    log_t = {w: {s: math.log(step[w][s]) for s in ok} for w in step}
    c = paired(log_t["candidate"], log_t["control"], "min")  # d = log t_ctrl - log t_cand
    ratio, lo, hi = (math.exp(-x) for x in (c.mean_diff, c.ci[1], c.ci[0]))
    reference = next(r["optimizer"] for r in runs if r["who"] == "control")
    text = f"step time x{ratio:.3g} [{lo:.3g}, {hi:.3g}] of the interleaved {reference} control"
    tts = {w: [_seconds_to_target(side[w][s], target) for s in seeds] for w in side}
    text += f", seconds to target {_median_s(tts['candidate'])} vs {_median_s(tts['control'])}"
    if not all(r["ran_now"] for r in runs):
        text += " (some runs from an earlier invocation: indicative)"
    return text


def control_reproduces(
    baselines: Path, out: Path, task: str, reference: str, target: Target
) -> tuple[int, int]:
    """``(k, n)``: of the ``n`` seeds both have, those at which the control's best target
    metric equals the committed reference's (a stale baseline shows here)."""
    targets = {task: target}
    mine = by_seed(scored_runs(out / "control", targets), task, reference)
    theirs = by_seed(scored_runs(baselines, targets), task, reference)
    seeds = sorted(set(mine) & set(theirs))
    return sum(mine[s] == theirs[s] for s in seeds), len(seeds)
