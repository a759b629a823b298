"""The scored runs of a results folder, by workload, optimizer and seed; target-setting runs never.

Two layouts are read (see notes/CAMPAIGN_LAYOUT.md):

* campaign: ``<root>/<task>/<optimizer>/reruns/s<seed>/`` with ``<root>/<task>/target/``
  holding the target-setting runs, which are never scored;
* baselines: ``<root>/<task>/<optimizer>/reruns/s<seed>/`` likewise (one study per
  optimizer, the study folder being the optimizer folder).

Only ``reruns/`` folders are scored; trials (``trials/``, ``study-*/``) and ``target/``
are not. Seeds come from the rerun folder name ``s<seed>`` and must agree with the
summary's ``seed``.

Identical math: two optimizers whose scored records agree metric-for-metric on every
evaluation of every shared seed are the same computation; :func:`identical_groups` names
them so a table shows the entry once (``= adamw``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from suite.record import read_jsonl, read_summary
from suite.report.read.targets import Target, TimeToTarget, time_to_target
from suite.trust import inside

NOT_SCORED = ("target",)  # folders under <task>/ that hold no optimizer's scored runs


@dataclass(frozen=True)
class ScoredRun:
    task: str
    optimizer: str
    seed: int
    folder: Path
    status: str
    best: float  # best value of the committed target's metric over evaluations (nan if none)
    ttt: TimeToTarget


def best_value(events: list[dict], target: Target) -> float:
    vals = [
        float(e[target.metric])
        for e in events
        if e.get("event") == "eval" and isinstance(e.get(target.metric), int | float)
    ]
    if not vals:
        return float("nan")
    return max(vals) if target.direction == "max" else min(vals)


def scored_runs(root: Path, targets: dict[str, Target]) -> list[ScoredRun]:
    """Every scored rerun under ``root`` for the tasks of ``targets`` (missing tasks skipped)."""
    runs = []
    for task, target in sorted(targets.items()):
        task_dir = Path(root) / task
        if not task_dir.is_dir():
            continue
        for opt_dir in sorted(p for p in task_dir.iterdir() if p.is_dir()):
            if opt_dir.name in NOT_SCORED or not (opt_dir / "reruns").is_dir():
                continue
            for run in sorted((opt_dir / "reruns").iterdir()):
                if not (run.is_dir() and run.name.startswith("s") and run.name[1:].isdigit()):
                    continue
                summary = read_summary(run)
                seed = int(run.name[1:])
                if summary.get("seed") != seed:
                    raise ValueError(
                        f"{run}: folder says seed {seed}, summary {summary.get('seed')}"
                    )
                events = read_jsonl(run / "metrics.jsonl")
                runs.append(
                    ScoredRun(
                        task,
                        opt_dir.name,
                        seed,
                        run,
                        summary["status"],
                        best_value(events, target),
                        time_to_target(run, target),
                    )
                )
    return runs


def by_seed(runs: list[ScoredRun], task: str, optimizer: str) -> dict[int, float]:
    """``{seed: best value}`` of one optimizer on one task (a diverged run counts as NaN)."""
    return {r.seed: r.best for r in runs if r.task == task and r.optimizer == optimizer}


def _fingerprint(run: ScoredRun) -> tuple:
    evals = [e for e in read_jsonl(run.folder / "metrics.jsonl") if e.get("event") == "eval"]
    return tuple(
        tuple(sorted((k, v) for k, v in e.items() if k not in ("elapsed_s", "event")))
        for e in evals
    )


def identical_groups(runs: list[ScoredRun], task: str) -> dict[str, str]:
    """``{optimizer: first optimizer it is identical to}`` on ``task`` (alphabetical first wins)."""
    opts: dict[str, dict[int, tuple]] = {}
    for r in runs:
        if r.task == task:
            opts.setdefault(r.optimizer, {})[r.seed] = _fingerprint(r)
    same: dict[str, str] = {}
    names = sorted(opts)
    for i, a in enumerate(names):
        if a in same:
            continue
        for b in names[i + 1 :]:
            if b not in same and opts[a].keys() == opts[b].keys() and opts[a] == opts[b]:
                same[b] = a
    return same


def study_runs(studies, targets: dict[str, Target]) -> list[ScoredRun]:
    """The scored reruns named by tuning studies (``study.json``'s ``reruns``; a run folder
    that leaves its study is refused), for the tasks of ``targets`` (others skipped)."""
    runs = []
    for st in studies:
        target = targets.get(st.task)
        if target is None:
            continue
        for r in st.meta["reruns"]:
            folder = inside(st.folder, r.get("run_dir"), f"{st.folder} rerun run_dir")
            summary = read_summary(folder)
            events = read_jsonl(folder / "metrics.jsonl")
            best, ttt = best_value(events, target), time_to_target(folder, target)
            runs.append(
                ScoredRun(
                    st.task,
                    st.optimizer,
                    int(summary["seed"]),
                    folder,
                    summary["status"],
                    best,
                    ttt,
                )
            )
    return runs


def identical_everywhere(runs: list[ScoredRun]) -> dict[str, str]:
    """``{optimizer: twin}``: scored on the same workloads as an alphabetically earlier
    optimizer and identical to it (:func:`identical_groups`) on every one of them."""
    tasks: dict[str, set[str]] = {}
    for r in runs:
        tasks.setdefault(r.optimizer, set()).add(r.task)
    groups = {t: identical_groups(runs, t) for t in {r.task for r in runs}}
    names, same = sorted(tasks), {}
    for i, a in enumerate(names):
        if a in same:
            continue
        for b in names[i + 1 :]:
            if b in same or tasks[a] != tasks[b]:
                continue
            if all(groups[t].get(a, a) == groups[t].get(b, b) for t in tasks[a]):
                same[b] = a
    return same
