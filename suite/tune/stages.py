"""What a campaign's units do once their turn comes (:mod:`suite.tune.campaign`): set a
workload's target from the reference's best trial, check that the budget has flattened
the reference, and choose each optimizer's trial by time to the target, then rerun it at
the scored seeds. Every run goes through :func:`suite.tune.launch.run_or_reuse`."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path
from typing import Any

from suite import trust
from suite.record import atomic_write_text, read_json, read_summary
from suite.report.documents import flatness
from suite.tune import objective
from suite.tune.launch import run_or_reuse
from suite.tune.protocol import Protocol
from suite.tune.study_config import StudyConfig, StudyError, check_optimizer_overrides

# ----------------------------------------------------------------------- time to target


def scored(run_dir: Path, target: dict) -> dict:
    """The run's summary scored against a committed ``target`` ({metric, value, direction})
    from its evaluations, never from the summary's own target (objective.against_target)."""
    return objective.against_target(read_summary(run_dir), run_dir, target)


def time_to_target(run_dir: Path, target: dict) -> float:
    """The objective against a committed ``target`` (smaller is better): steps to target /
    steps if reached; 1 + relative shortfall of the best value if not; inf if the run did
    not end ``ok`` (:func:`suite.tune.objective.objective_value`)."""
    return objective.objective_value(scored(run_dir, target))


# ----------------------------------------------------------------------------- the units


def _trials(p: Protocol, task: str, optimizer: str) -> list[dict]:
    """Every complete trial of the optimizer's studies: study, number, run dir, overrides."""
    rows = []
    for k in range(p.studies):
        folder = p.out / task / optimizer / f"study-{k}"
        study = read_json(folder / "study.json")
        for t in study["trials"]:
            if t["state"] == "COMPLETE":
                rows.append(
                    {
                        "study": k,
                        "trial": t["number"],
                        "run_dir": _inside(folder, t["run_dir"]),
                        "values": t["values"],
                        "overrides": t["overrides"],
                    }
                )
    return rows


def _inside(folder: Path, rel: Any) -> Path:
    """A run folder named by a study, refused unless it stays inside the study's folder."""
    try:
        return trust.inside(folder, rel, "a study's run_dir")
    except ValueError as e:
        raise StudyError(str(e)) from None


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def set_target(p: Protocol, task: str, log=print) -> dict:
    """Stage 2: the reference's best trial (by best val metric) rerun at the target seeds."""
    folder = p.out / task / "target"
    done = folder / "target.json"
    if done.is_file():
        return read_json(done)
    trials = _trials(p, task, p.reference)
    own = read_summary(trials[0]["run_dir"])["target"]  # the task's metric and direction
    metric, direction = own["metric"], own["direction"]
    sign = 1.0 if direction == "max" else -1.0
    best = max(trials, key=lambda t: sign * _finite(_best(t["run_dir"]), sign))
    cfg = p.study(task, p.reference, 0)
    overrides = _checked(cfg, best["overrides"])
    values = []
    for seed in p.target_seeds:
        run_or_reuse(cfg, seed, overrides, folder / f"s{seed}")
        values.append(_best(folder / f"s{seed}"))
    target = {
        "metric": metric,
        "direction": direction,
        "value": statistics.median(values),
        "reference": p.reference,
        "from_trial": {"study": best["study"], "trial": best["trial"]},
        "overrides": overrides,
        "seeds": list(p.target_seeds),
        "values": values,
        "procedure": (
            "the reference optimizer's trial with the best val metric over all its studies, "
            "rerun at the target seeds (never scored); the target is the median of their best "
            "val metric (AlgoPerf's rule)"
        ),
    }
    _write_json(done, target)
    log(f"[{task}] target {metric} {'>=' if sign > 0 else '<='} {target['value']:.4g}")
    return target


def check_budget(p: Protocol, task: str, log=print) -> dict:
    """Stage 2b: has the reference flattened by the budget S? The target-setting runs again
    at 2S (same seeds and overrides, the schedule stretched to 2S, evaluated on the same
    grid; never scored), compared by seed with the runs at S (``suite.report.documents.flatness``:
    ``flatness.md`` and ``.png`` beside the target)."""
    folder = p.out / task / "target"
    target = read_json(folder / "target.json")
    steps = int(p.workloads[task]["steps"])
    cfg = dataclasses.replace(p.study(task, p.reference, 0), steps=2 * steps, evals=2 * p.evals)
    overrides = _checked(cfg, target["overrides"])
    for seed in target["seeds"]:
        run_or_reuse(cfg, seed, overrides, folder / "double" / f"s{seed}")
    flat = flatness.write(task, folder, steps)
    log(
        f"[{task}] the budget is {'where the reference has flattened' if flat['flat'] else 'SHORT'}"
        f": twice the steps gain {flat['gain']:+.4g} (median by seed) vs seed spread "
        f"{flat['spread']:.4g}; flatness.md"
    )
    return flat


def _best(run_dir: Path) -> float:
    """The run's best value of its task's target metric over its evaluations."""
    return objective.best_metric(read_summary(run_dir))


def _checked(cfg: StudyConfig, overrides: list[str]) -> list[str]:
    """Overrides read back from a study: only this optimizer's hyperparameters, plain."""
    return check_optimizer_overrides(cfg, overrides, "selected", str(cfg.out.parent))


def _finite(x: float, sign: float) -> float:
    return x if math.isfinite(x) else -sign * math.inf


def select_and_rerun(p: Protocol, task: str, optimizer: str, target: dict, log=print) -> dict:
    """Stage 3: the pooled choice by time to the committed target, then the scored seeds."""
    selected = select(p, task, optimizer, target)
    for seed in p.rerun_seeds:
        s = rerun(p, task, optimizer, selected["overrides"], seed)
        log(f"[{task}/{optimizer}] rerun s{seed}: {s['status']}")
    return selected


def rerun(p: Protocol, task: str, optimizer: str, overrides: list[str], seed: int) -> dict:
    """One scored run, ``<out>/<task>/<optimizer>/reruns/s<seed>``: its summary."""
    folder = p.out / task / optimizer / "reruns" / f"s{seed}"
    return run_or_reuse(p.study(task, optimizer, 0), seed, overrides, folder)


def selected_overrides(p: Protocol, task: str, optimizer: str) -> list[str]:
    """The committed ``selected.json`` choice, checked as this optimizer's plain overrides."""
    path = p.out / task / optimizer / "selected.json"
    if not path.is_file():
        raise StudyError(f"{path} is missing: the tier has not chosen {optimizer} on {task}")
    return _checked(p.study(task, optimizer, 0), read_json(path)["overrides"])


def select(p: Protocol, task: str, optimizer: str, target: dict) -> dict:
    """The trial with the shortest time to ``target`` over all the optimizer's studies,
    written to ``selected.json``."""
    trials = _trials(p, task, optimizer)
    for t in trials:
        s = scored(t["run_dir"], target)
        t["objective"], t["best"] = objective.objective_value(s), objective.best_metric(s)
        t["rank"] = objective.rank_key(s)  # the objective, then the best val metric
    chosen = min(trials, key=lambda t: (*t["rank"], t["study"], t["trial"]))
    folder = p.out / task / optimizer
    selected = {
        "task": task,
        "optimizer": optimizer,
        "target": {k: target[k] for k in ("metric", "direction", "value")},
        "selection_split": "val",
        "objective": "steps to the committed val target / steps, else 1 + relative shortfall",
        "chosen": {"study": chosen["study"], "trial": chosen["trial"]},
        "values": chosen["values"],
        "overrides": _checked(p.study(task, optimizer, 0), chosen["overrides"]),
        "trials": [
            {
                "study": t["study"],
                "trial": t["trial"],
                "objective": t["objective"] if math.isfinite(t["objective"]) else "inf",
                "best": t["best"] if math.isfinite(t["best"]) else "nan",
                "values": t["values"],
            }
            for t in trials
        ],
    }
    _write_json(folder / "selected.json", selected)
    return selected
