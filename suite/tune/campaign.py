"""``python -m suite.tune.campaign [--protocol cpu] [--jobs N] [--plan]``: a benchmark tier.

A tier (``suite/conf/protocol/<name>.yaml``) is every optimizer on every workload, tuned in
independent studies, scored on fresh seeds against targets set by runs that are never
scored. Per workload, in this order (a unit runs once what it depends on is done):

1. **studies**: for every optimizer, ``studies`` independent Optuna studies of
   ``trials_per_study`` Sobol trials (study k: sampler seed k, training seed
   ``study_seed_base + k``), each an ordinary study folder ``<out>/<task>/<opt>/study-<k>``.
   Sobol points do not depend on the objective, so studies need no target.
2. **target** (after the reference's studies): the reference optimizer's trial with the
   best val metric over all its studies, rerun at ``target_seeds``
   (``<task>/target/s<seed>``); the target is the median of their best val metric
   (AlgoPerf's rule), written to ``<task>/target/target.json``.
3. **select and rerun** (after the target and the optimizer's studies): the trial whose
   time to that target is shortest (else the smallest shortfall; :func:`time_to_target`)
   over all its studies, ``selected.json``, then ``rerun_seeds`` in ``reruns/s<seed>``:
   the scored runs, paired by seed across optimizers.

Resumable and safe to kill: a finished record is never rerun, an unfinished run folder is
kept under ``<name>.killed-<n>`` and its seed runs again; a study resumes through its
database. Progress and an ETA on the terminal (rich) or as plain lines in a log.
Nothing read from a record is instantiated: overrides are rebuilt from the values of the
search space, which are numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from suite import trust
from suite.record import atomic_write_text, read_summary
from suite.report.documents import flatness
from suite.tune import objective
from suite.tune.space import CONF, SpaceError
from suite.tune.study import (
    FINISHED,
    StudyConfig,
    StudyError,
    check_optimizer_overrides,
    launch,
    tune,
)
from suite.tune.study import (
    finished as record_finished,
)

# ----------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class Protocol:
    """A tier as ``suite/conf/protocol/<name>.yaml`` states it (see that file)."""

    name: str
    out: Path
    reference: str
    studies: int
    trials_per_study: int
    sampler: str
    study_seed_base: int
    rerun_seeds: tuple[int, ...]
    target_seeds: tuple[int, ...]
    evals: int
    run_overrides: tuple[str, ...]
    optimizers: tuple[str, ...]
    workloads: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, conf: Path = CONF) -> Protocol:
        path = conf / "protocol" / f"{name}.yaml"
        if not path.is_file():
            valid = sorted(p.stem for p in (conf / "protocol").glob("*.yaml"))
            raise StudyError(f"unknown protocol {name!r}; valid: {', '.join(valid)}")
        p = cls.from_mapping(name, yaml.safe_load(path.read_text()))
        p.check(conf)
        return p

    @classmethod
    def from_mapping(cls, name: str, raw: dict[str, Any]) -> Protocol:
        if "select_from" in raw:
            raise StudyError(
                f"protocol {name!r} tunes nothing (it reruns {raw['select_from']}'s choices): "
                "run it with python -m suite.tune.transfer (make bench PROFILE=gpu)"
            )
        return cls(
            name=name,
            out=Path(raw["out"]),
            reference=raw["reference"],
            studies=int(raw["studies"]),
            trials_per_study=int(raw["trials_per_study"]),
            sampler=raw["sampler"],
            study_seed_base=int(raw["study_seed_base"]),
            rerun_seeds=tuple(int(s) for s in raw["rerun_seeds"]),
            target_seeds=tuple(int(s) for s in raw["target_seeds"]),
            evals=int(raw["evals"]),
            run_overrides=tuple(raw["run_overrides"]),
            optimizers=tuple(raw["optimizers"]),
            workloads=dict(raw["workloads"]),
        )

    def check(self, conf: Path = CONF) -> None:
        """Every name and number, before any work: one line naming what is wrong."""
        if self.reference not in self.optimizers:
            raise StudyError(f"reference {self.reference!r} is not among the optimizers")
        if self.studies < 3:
            raise StudyError(f"invalid studies: {self.studies} (need >= 3 independent studies)")
        seeds = (*self.rerun_seeds, *self.target_seeds)
        if len(set(seeds)) != len(seeds) or len(self.target_seeds) < 5:
            raise StudyError("rerun and target seeds must be distinct, with >= 5 target seeds")
        study_seeds = {self.study_seed_base + k for k in range(self.studies)}
        if study_seeds & set(seeds):
            raise StudyError("the studies' training seeds overlap the rerun or target seeds")
        for task, w in self.workloads.items():
            if not {"kind", "steps"} <= set(w):
                raise StudyError(f"workload {task!r} needs kind and steps")
        for task in self.workloads:
            for opt in self.optimizers:
                try:
                    self.study(task, opt, 0).check()
                except SpaceError as e:
                    raise StudyError(str(e)) from None

    def study(self, task: str, optimizer: str, k: int) -> StudyConfig:
        w = self.workloads[task]
        return StudyConfig(
            task=task,
            optimizer=optimizer,
            trials=self.trials_per_study,
            out=self.out / task / optimizer / f"study-{k}",
            steps=int(w["steps"]),
            sampler=self.sampler,
            sampler_seed=k,
            tune_seed=self.study_seed_base + k,
            rerun_seeds=self.rerun_seeds,
            evals=self.evals,
            extra=self.run_overrides + tuple(w.get("overrides", ())),
            reruns=False,
        )


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
        study = json.loads((folder / "study.json").read_text())
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


def _run(cfg: StudyConfig, seed: int, overrides: list[str], run_dir: Path) -> dict:
    """One record to its end, or the finished one already there; an unfinished folder is
    kept as ``<name>.killed-<n>`` and the run starts again under the same name."""
    if run_dir.exists():
        try:
            s = read_summary(run_dir)
            if s.get("status") in FINISHED:
                return s
        except (OSError, ValueError):
            pass
        n = 1
        while run_dir.with_name(f"{run_dir.name}.killed-{n}").exists():
            n += 1
        os.rename(run_dir, run_dir.with_name(f"{run_dir.name}.killed-{n}"))
    return launch(cfg, seed, overrides, run_dir)


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def set_target(p: Protocol, task: str, log=print) -> dict:
    """Stage 2: the reference's best trial (by best val metric) rerun at the target seeds."""
    folder = p.out / task / "target"
    done = folder / "target.json"
    if done.is_file():
        return json.loads(done.read_text())
    trials = _trials(p, task, p.reference)
    own = read_summary(trials[0]["run_dir"])["target"]  # the task's metric and direction
    metric, direction = own["metric"], own["direction"]
    sign = 1.0 if direction == "max" else -1.0
    best = max(trials, key=lambda t: sign * _finite(_best(t["run_dir"]), sign))
    cfg = p.study(task, p.reference, 0)
    overrides = _checked(cfg, best["overrides"])
    values = []
    for seed in p.target_seeds:
        _run(cfg, seed, overrides, folder / f"s{seed}")
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
    target = json.loads((folder / "target.json").read_text())
    steps = int(p.workloads[task]["steps"])
    cfg = dataclasses.replace(p.study(task, p.reference, 0), steps=2 * steps, evals=2 * p.evals)
    overrides = _checked(cfg, target["overrides"])
    for seed in target["seeds"]:
        _run(cfg, seed, overrides, folder / "double" / f"s{seed}")
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
    cfg = p.study(task, optimizer, 0)
    for seed in p.rerun_seeds:
        s = _run(cfg, seed, selected["overrides"], folder / "reruns" / f"s{seed}")
        log(f"[{task}/{optimizer}] rerun s{seed}: {s['status']}")
    return selected


# ------------------------------------------------------------------------------ schedule


@dataclass
class Unit:
    """One piece of work: a study, a target, or a selection with its reruns."""

    kind: str  # study | target | budget | rerun
    task: str
    optimizer: str = ""
    k: int = 0
    runs: int = 0  # how many runs it will make (for the ETA)

    @property
    def label(self) -> str:
        if self.kind == "study":
            return f"{self.task}/{self.optimizer}/study-{self.k}"
        return f"{self.task}/{self.optimizer or 'target'}/{self.kind}"


def plan(p: Protocol) -> list[Unit]:
    """Every unit in the order it should run: workload by workload; the reference's
    studies, then every optimizer's study 0, then study 1, ...; the target; the reruns."""
    units = []
    for task in p.workloads:
        others = [o for o in p.optimizers if o != p.reference]
        units += [Unit("study", task, p.reference, k, p.trials_per_study) for k in range(p.studies)]
        units.append(Unit("target", task, "", 0, len(p.target_seeds)))
        units.append(Unit("budget", task, "", 0, 2 * len(p.target_seeds)))  # runs of 2S: 2 each
        for k in range(p.studies):
            units += [Unit("study", task, o, k, p.trials_per_study) for o in others]
        units += [Unit("rerun", task, o, 0, len(p.rerun_seeds)) for o in p.optimizers]
    return units


def done(p: Protocol, u: Unit) -> bool:
    if u.kind == "study":
        path = p.out / u.task / u.optimizer / f"study-{u.k}" / "study.json"
        return path.is_file() and _complete(path) >= p.trials_per_study
    if u.kind == "target":
        return (p.out / u.task / "target" / "target.json").is_file()
    if u.kind == "budget":
        folder = p.out / u.task / "target"
        double = [folder / "double" / f"s{s}" for s in p.target_seeds]
        return (folder / "flatness.json").is_file() and all(map(record_finished, double))
    reruns = p.out / u.task / u.optimizer / "reruns"
    return all(record_finished(reruns / f"s{s}") for s in p.rerun_seeds)


def _complete(study_json: Path) -> int:
    return sum(t["state"] == "COMPLETE" for t in json.loads(study_json.read_text())["trials"])


def ready(p: Protocol, u: Unit, finished: set[str]) -> bool:
    """Whether what the unit needs is done: a target needs the reference's studies; the
    budget check needs the target; the other optimizers' studies and every rerun need a
    budget that has flattened (:func:`budget_ok`); a rerun also needs its own studies."""
    need = []
    if u.kind == "target":
        need = [f"{u.task}/{p.reference}/study-{k}" for k in range(p.studies)]
    elif u.kind == "budget":
        need = [f"{u.task}/target/target"]
    elif u.kind == "rerun" or (u.kind == "study" and u.optimizer != p.reference):
        need = [f"{u.task}/target/budget"]
        if u.kind == "rerun":
            need += [f"{u.task}/target/target"]
            need += [f"{u.task}/{u.optimizer}/study-{k}" for k in range(p.studies)]
    return all(n in finished for n in need) and (
        f"{u.task}/target/budget" not in need or budget_ok(p, u.task)
    )


def budget_ok(p: Protocol, task: str) -> bool:
    """Whether the workload's budget may be spent on: its reference flattened by it
    (``flatness.json``), or the protocol waives the check for it (``budget_waiver``:
    the reason, said in the report)."""
    if p.workloads[task].get("budget_waiver"):
        return True
    path = p.out / task / "target" / "flatness.json"
    return path.is_file() and json.loads(path.read_text()).get("flat") is True


def execute(p: Protocol, u: Unit, log=print) -> None:
    if u.kind == "study":
        tune(p.study(u.task, u.optimizer, u.k), log=lambda line: log(f"[{u.label}] {line}"))
    elif u.kind == "target":
        set_target(p, u.task, log)
    elif u.kind == "budget":
        check_budget(p, u.task, log)
    else:
        target = json.loads((p.out / u.task / "target" / "target.json").read_text())
        select_and_rerun(p, u.task, u.optimizer, target, log)


def campaign(p: Protocol, jobs: int, stop_after: float | None = None, log=print) -> int:
    """Run every unit not yet done, ``jobs`` at a time, dependencies first; 0 when all are
    done, 3 when stopped by ``stop_after`` seconds (what finished is kept)."""
    units = plan(p)
    finished = {u.label for u in units if done(p, u)}
    todo = [u for u in units if u.label not in finished]
    total_runs = sum(u.runs for u in todo)
    log(f"{len(finished)}/{len(units)} units done; {len(todo)} to run ({total_runs} runs)")
    start, runs_done, lock = time.perf_counter(), 0, threading.Lock()
    running: dict = {}
    with ThreadPoolExecutor(jobs) as pool:
        while todo or running:
            out_of_time = stop_after is not None and time.perf_counter() - start > stop_after
            while len(running) < jobs and not out_of_time:
                nxt = next((u for u in todo if ready(p, u, finished)), None)
                if nxt is None:
                    break
                todo.remove(nxt)
                running[pool.submit(execute, p, nxt, log)] = nxt
            if not running:
                if out_of_time:
                    log("stopped by --stop-after; rerun the same command to continue")
                    return 3
                short = sorted({u.task for u in todo if not budget_ok(p, u.task)})
                raise StudyError(
                    f"{len(todo)} units wait; workloads whose budget is short (the reference "
                    f"still gains at twice the steps; see <task>/target/flatness.md): "
                    f"{', '.join(short) or 'none'}: raise their steps in the protocol (their "
                    "records move aside) or give a budget_waiver with the reason"
                )
            for fut in wait(running, return_when=FIRST_COMPLETED).done:
                u = running.pop(fut)
                fut.result()  # a StudyError stops the campaign (after the running units)
                with lock:
                    finished.add(u.label)
                    runs_done += u.runs
                    spent = time.perf_counter() - start
                    left = sum(x.runs for x in todo) + sum(x.runs for x in running.values())
                    eta = spent / max(runs_done, 1) * left
                    log(
                        f"done {u.label} | {runs_done}/{total_runs} runs in {spent / 60:.1f} min"
                        f" | ETA {eta / 3600:.1f} h at {jobs} job(s)"
                    )
    return 0


def measured_seconds(p: Protocol) -> dict[str, tuple[float, int]]:
    """Per workload, (median ``wall_seconds``, how many records) of the tier's finished runs:
    what a run costs here, launch excluded (about 1 s from the warm fork server)."""
    out = {}
    for task in p.workloads:
        walls = []
        for f in (p.out / task).glob("**/summary.json"):
            wall = read_summary(f.parent).get("wall_seconds")
            if isinstance(wall, (int, float)) and math.isfinite(wall):
                walls.append(float(wall))
        if walls:
            out[task] = (statistics.median(walls), len(walls))
    return out


def estimate(p: Protocol, run_seconds: dict[str, float]) -> str:
    """The plan's size and core-hours, per workload: seconds per run measured from the
    tier's own records where it has some, else as given (``--run-seconds task=s``)."""
    measured, units = measured_seconds(p), plan(p)
    lines, total, left_total = [], 0.0, 0.0
    for task in p.workloads:
        runs = sum(u.runs for u in units if u.task == task)
        left = sum(u.runs for u in units if u.task == task and not done(p, u))
        secs, source = run_seconds.get(task, math.nan), "given"
        if task in measured:
            secs, n = measured[task]
            source = f"median of {n} records"
        elif task not in run_seconds:
            source = "not measured yet: pass --run-seconds"
        total += runs * secs / 3600
        left_total += left * secs / 3600
        lines.append(
            f"{task}: {runs} runs ({left} to run) x {secs:.0f} s ({source}) = "
            f"{runs * secs / 3600:.1f} core-h, {left * secs / 3600:.1f} left"
        )
    return "\n".join([*lines, f"total: {total:.1f} core-hours, {left_total:.1f} left"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m suite.tune.campaign", description=__doc__)
    ap.add_argument("--protocol", default="cpu")
    ap.add_argument("--jobs", type=int, default=1, help="units at once (each run: threads=1)")
    ap.add_argument("--stop-after", type=float, default=None, help="seconds; then stop cleanly")
    ap.add_argument("--plan", action="store_true", help="print the units and the estimate only")
    ap.add_argument("--run-seconds", nargs="*", default=[], help="task=seconds per run, for --plan")
    a = ap.parse_args(argv)
    if a.jobs < 1:
        print(f"error: invalid --jobs {a.jobs} (must be >= 1)", file=sys.stderr)
        return 2
    try:
        p = Protocol.load(a.protocol)
        if a.plan:
            secs = {k: float(v) for k, _, v in (s.partition("=") for s in a.run_seconds)}
            units = plan(p)
            left = [u for u in units if not done(p, u)]
            print(f"{len(units)} units, {sum(u.runs for u in units)} runs; "
                  f"{len(left)} units ({sum(u.runs for u in left)} runs) not done")  # fmt: skip
            print(estimate(p, secs))
            return 0

        def log(line: str) -> None:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

        return campaign(p, a.jobs, a.stop_after, log)
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
