"""A campaign's plan and its price: the units of a tier (studies, target, budget check,
reruns) in the order they run, which are done, which are ready (what each waits on), and
the core-hours they cost, measured from the tier's own records where it has some."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from suite.record import read_json, read_summary
from suite.tune.launch import finished as record_finished
from suite.tune.protocol import Protocol


@dataclass
class Unit:
    """One piece of work: a study, a target, or a selection with its reruns."""

    kind: str  # study | target | budget | rerun
    task: str
    optimizer: str = ""
    k: int = 0
    runs: int = 0  # how many runs it will make (for the ETA; a budget-check run counts twice)

    @property
    def folders(self) -> int:
        """How many run folders it makes (a budget-check run is one folder of twice the steps)."""
        return self.runs // 2 if self.kind == "budget" else self.runs

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
    return sum(t["state"] == "COMPLETE" for t in read_json(study_json)["trials"])


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
    return path.is_file() and read_json(path).get("flat") is True


def measured_seconds(p: Protocol) -> dict[tuple[str, str], list[float]]:
    """Seconds each finished run of the tier took, scaled to its workload's budget (a budget
    check's run is twice as long), per (workload, optimizer); the target-setting and budget
    check runs count as the reference's. Launch excluded (about 1 s from the warm fork
    server). Runs share the machine with other work, so these are what runs cost as the
    tier ran."""
    out: dict[tuple[str, str], list[float]] = {}
    for task, w in p.workloads.items():
        for f in (p.out / task).glob("**/summary.json"):
            s = read_summary(f.parent)
            wall, steps = s.get("wall_seconds"), s.get("max_steps")
            if isinstance(wall, (int, float)) and math.isfinite(wall) and isinstance(steps, int):
                opt = f.relative_to(p.out / task).parts[0]
                key = (task, p.reference if opt == "target" else opt)
                out.setdefault(key, []).append(float(wall) * int(w["steps"]) / max(steps, 1))
    return out


def _quartile(walls: list[float]) -> float:
    return statistics.quantiles(walls, n=4)[0] if len(walls) > 1 else walls[0]


def seconds_per_run(p: Protocol, given: dict[str, float]) -> dict[tuple[str, str], tuple]:
    """(median, lower quartile, source) of a run's seconds per (workload, optimizer).

    Measured where the tier has records of that pair. Else the workload's reference runs
    times the optimizer's factor: how much longer than the reference its runs took, the
    median over the workloads where both are measured (torchao's 4-bit AdamW costs 3-7x
    AdamW on the image workloads; a workload's reference alone would price it at 1x).
    Else as given (``--run-seconds task=s``), else NaN. Medians, so that a few runs slowed
    by other work on the machine do not price the rest (one of lm_shakespeare's reference
    trials took 759 s, twenty times its median); what the records did cost, outliers
    included, is ``make tier-cost``'s. The lower quartile is what a quieter core would cost."""
    walls = measured_seconds(p)
    typical = {k: statistics.median(v) for k, v in walls.items()}
    factor = {}
    for opt in p.optimizers:
        ratios = [
            typical[(t, opt)] / typical[(t, p.reference)]
            for t in p.workloads
            if (t, opt) in typical and (t, p.reference) in typical
        ]
        factor[opt] = statistics.median(ratios) if ratios else math.nan
    out = {}
    for task in p.workloads:
        for opt in p.optimizers:
            ref = (task, p.reference)
            if (task, opt) in walls:
                out[(task, opt)] = (typical[(task, opt)], _quartile(walls[(task, opt)]), "measured")
            elif ref in walls and math.isfinite(factor[opt]):
                f = factor[opt]
                out[(task, opt)] = (typical[ref] * f, _quartile(walls[ref]) * f, "factor")
            elif task in given:
                out[(task, opt)] = (given[task], given[task], "given")
            else:
                out[(task, opt)] = (math.nan, math.nan, "unknown")
    return out


def estimate(p: Protocol, run_seconds: dict[str, float]) -> str:
    """The plan's size and core-hours, per workload, each unit priced at its own optimizer's
    seconds per run (:func:`seconds_per_run`; target and budget units at the reference's)."""
    price, units = seconds_per_run(p, run_seconds), plan(p)
    lines, total, left_total, left_quiet = [], 0.0, 0.0, 0.0
    for task in p.workloads:
        mine = [u for u in units if u.task == task]
        cost = {u.label: price[(task, u.optimizer or p.reference)] for u in mine}
        runs = sum(u.runs for u in mine)
        todo = [u for u in mine if not done(p, u)]
        hours = sum(u.runs * cost[u.label][0] for u in mine) / 3600
        left = sum(u.runs * cost[u.label][0] for u in todo) / 3600
        total, left_total = total + hours, left_total + left
        left_quiet += sum(u.runs * cost[u.label][1] for u in todo) / 3600
        sources = Counter(src for _, _, src in (price[(task, o)] for o in p.optimizers))
        how = ", ".join(f"{n} {SOURCES[s]}" for s, n in sources.items())
        ref_seconds = price[(task, p.reference)][0]
        lines.append(
            f"{task}: {runs} runs ({sum(u.runs for u in todo)} to run) = {hours:.1f} core-h, "
            f"{left:.1f} left; reference {ref_seconds:.0f} s per run; optimizers priced: {how}"
        )
    return "\n".join(
        [
            *lines,
            f"total: {total:.1f} core-hours, {left_total:.1f} left "
            f"({left_quiet:.1f} at the lower quartiles, a quieter core)",
        ]
    )


SOURCES = {
    "measured": "from their own records (median)",
    "factor": "as the reference x their factor on the other workloads",
    "given": "as given",
    "unknown": "not measured yet: pass --run-seconds",
}
