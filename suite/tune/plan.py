"""A campaign's plan and its price: the units of a tier (studies, target, budget check,
reruns) in the order they run, which are done, which are ready (what each waits on), and
the core-hours they cost, measured from the tier's own records where it has some."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from suite.record import read_summary
from suite.tune.launch import finished as record_finished
from suite.tune.protocol import Protocol


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


def measured_seconds(p: Protocol) -> dict[str, tuple[float, float, int]]:
    """Per workload, (median, lower quartile, how many records) of the seconds its finished
    runs took, each scaled to the workload's budget (a budget check's run is twice as long):
    what a run costs here, launch excluded (about 1 s from the warm fork server). Runs share
    the machine with other work, so the median is what a run cost as the tier ran and the
    lower quartile what it costs on a quieter core."""
    out = {}
    for task, w in p.workloads.items():
        walls = []
        for f in (p.out / task).glob("**/summary.json"):
            s = read_summary(f.parent)
            wall, steps = s.get("wall_seconds"), s.get("max_steps")
            if isinstance(wall, (int, float)) and math.isfinite(wall) and isinstance(steps, int):
                walls.append(float(wall) * int(w["steps"]) / max(steps, 1))
        if walls:
            quiet = statistics.quantiles(walls, n=4)[0] if len(walls) > 1 else walls[0]
            out[task] = (statistics.median(walls), quiet, len(walls))
    return out


def estimate(p: Protocol, run_seconds: dict[str, float]) -> str:
    """The plan's size and core-hours, per workload: seconds per run measured from the
    tier's own records where it has some (median; lower quartile for a quieter core), else
    as given (``--run-seconds task=s``)."""
    measured, units = measured_seconds(p), plan(p)
    lines, total, left_total, left_quiet = [], 0.0, 0.0, 0.0
    for task in p.workloads:
        runs = sum(u.runs for u in units if u.task == task)
        left = sum(u.runs for u in units if u.task == task and not done(p, u))
        secs, source = run_seconds.get(task, math.nan), "given"
        quiet = secs
        if task in measured:
            secs, quiet, n = measured[task]
            source = f"median of {n} records; lower quartile {quiet:.0f} s"
        elif task not in run_seconds:
            source = "not measured yet: pass --run-seconds"
        total += runs * secs / 3600
        left_total += left * secs / 3600
        left_quiet += left * quiet / 3600
        lines.append(
            f"{task}: {runs} runs ({left} to run) x {secs:.0f} s ({source}) = "
            f"{runs * secs / 3600:.1f} core-h, {left * secs / 3600:.1f} left"
        )
    return "\n".join(
        [
            *lines,
            f"total: {total:.1f} core-hours, {left_total:.1f} left "
            f"({left_quiet:.1f} at the lower quartiles, a quieter core)",
        ]
    )
