"""What a tier cost, from its own records: ``<out>/COMMAND.md``.

``python -m suite.tune.cost --protocol cpu`` (``make tier-cost``) reads every run folder of
the tier and writes how it was made and what it took:

- **core-hours**: every run uses one torch thread (``env.json``'s ``torch_threads``), so a
  run's ``wall_seconds`` (``summary.json``) is its core-seconds; per workload and stage
  (studies, target, budget check, reruns). The launch of a run from the warm fork server
  (about 1 s) and the campaign's own bookkeeping are not in it.
- **killed runs** (``*.killed-<n>``, kept as they were and run again): no summary, so their
  cost is their last evaluation's ``elapsed_s``, a lower bound;
- **the code and the machine**: the commits the records were made with, every package
  version found (a package with two versions is named), the CPU, cores and threads;
- **progress**: units and runs done of the plan (:mod:`suite.tune.plan`).

Nothing is run; the file is written atomically.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from suite.record import (
    RecordError,
    atomic_write_text,
    find_runs,
    read_json,
    read_jsonl,
    read_summary,
)
from suite.report.present.render import to_markdown
from suite.tune.plan import done, plan
from suite.tune.protocol import Protocol
from suite.tune.study_config import StudyError

STAGES = ("studies", "target", "budget check", "reruns", "killed")


def stage(rel: Path) -> str:
    """A run folder's stage from its place in the tier (``<task>/<opt>/...``)."""
    parts = rel.parts
    if any(".killed-" in p for p in parts):
        return "killed"
    if parts[1] == "target":
        return "budget check" if "double" in parts else "target"
    return "reruns" if "reruns" in parts else "studies"


def _killed_seconds(run_dir: Path) -> float:
    events = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
    return max((e.get("elapsed_s", 0.0) for e in events if e.get("event") == "eval"), default=0.0)


def runs_table(p: Protocol) -> pd.DataFrame:
    """One row per run folder: task, stage, seconds, commit, threads, cpu, packages."""
    rows = []
    for run_dir in find_runs(p.out):
        rel = run_dir.relative_to(p.out)
        if rel.parts[0] not in p.workloads:
            continue
        where = stage(rel)
        if where != "killed" and not (run_dir / "summary.json").is_file():
            continue  # running now, or killed and not yet moved aside: counted once it is
        seconds = (
            _killed_seconds(run_dir) if where == "killed" else read_summary(run_dir)["wall_seconds"]
        )
        env = _env(run_dir / "env.json")
        rows.append(
            {
                "task": rel.parts[0],
                "stage": where,
                "seconds": float(seconds or 0.0),
                "commit": (env.get("git_commit") or "unknown")[:7],
                "threads": env.get("torch_threads"),
                "cpu": f"{env.get('cpu', '?')}, {env.get('cpu_count', '?')} cores",
                "packages": env.get("packages", {}),
                "started": env.get("time_utc", ""),
            }
        )
    return pd.DataFrame(rows)


def _folders_line(runs: pd.DataFrame, units: list) -> str:
    """Run folders on disk against the plan's, and what the difference is."""
    planned = sum(u.folders for u in units)
    killed = int((runs["stage"] == "killed").sum())
    extra = int((runs["stage"] == "studies").sum()) - sum(
        u.folders for u in units if u.kind == "study"
    )
    parts = [f"{killed} killed and run again"] if killed else []
    if extra > 0:
        parts.append(
            f"{extra} study trials that finished after a stop had cut their study off: Optuna "
            "marked them failed and drew new trials, and the tier reads only complete ones"
        )
    return f"{len(runs)} run folders for the plan's {planned}" + (
        f" ({'; '.join(parts)})" if parts else ""
    )


def _env(path: Path) -> dict:
    """A run's ``env.json`` as a dict (``{}`` where there is none); read like every record,
    bounded and regular files only (:func:`suite.record.read_json`)."""
    if not path.exists():
        return {}
    env = read_json(path)
    if not isinstance(env, dict):
        raise RecordError(f"{path}: not a JSON object")
    return env


def core_hours(runs: pd.DataFrame, workloads: list[str]) -> pd.DataFrame:
    """Core-hours per workload (rows, in protocol order, then the total) and stage."""
    table = runs.pivot_table(
        index="task", columns="stage", values="seconds", aggfunc="sum", fill_value=0.0
    )
    table = table.reindex(index=workloads, columns=list(STAGES), fill_value=0.0) / 3600
    table["total"] = table.sum(axis=1)
    table.loc["all"] = table.sum(axis=0)
    counts = runs.groupby("task").size().reindex(workloads).fillna(0).astype(int)
    table = table.round(2).rename_axis("workload").reset_index()
    table.insert(1, "runs", [*counts.tolist(), len(runs)])
    return table


def _versions(runs: pd.DataFrame) -> list[str]:
    found: dict[str, Counter] = {}
    for packages in runs["packages"]:
        for name, version in packages.items():
            found.setdefault(name, Counter())[version] += 1
    return [
        f"{name} {', '.join(f'{v} ({n} runs)' for v, n in c.most_common())}"
        if len(c) > 1
        else f"{name} {next(iter(c))}"
        for name, c in sorted(found.items())
    ]


def document(p: Protocol) -> str:
    runs = runs_table(p)
    if runs.empty:
        raise StudyError(f"{p.out}: holds no run of the tier yet; run make campaign first")
    units = plan(p)
    left = [u for u in units if not done(p, u)]
    hours = core_hours(runs, list(p.workloads))
    total = float(hours.loc[hours["workload"] == "all", "total"].iloc[0])
    status = (
        "complete" if not left else f"in progress: {len(units) - len(left)} of {len(units)} units"
    )
    commits = ", ".join(f"`{c}` ({n} runs)" for c, n in runs["commit"].value_counts().items())
    threads = ", ".join(f"{t} ({n} runs)" for t, n in runs["threads"].value_counts().items())
    started = sorted(s for s in runs["started"] if s)
    lines = [
        f"# The {p.name} tier: how it was made and what it took",
        "",
        f"Status: **{status}**; {_folders_line(runs, units)}. **{total:.1f} core-hours** in the "
        "runs themselves.",
        "",
        "## Command",
        "",
        f"    make campaign JOBS=2   # python -m suite.tune.campaign --protocol {p.name} --jobs 2",
        "",
        f"The tier is `suite/conf/protocol/{p.name}.yaml`. The campaign resumes where it was "
        "stopped, so it ran as several starts (`results/logs/campaign-*.log`); every start "
        "ran from a frozen copy of the code at a commit named below.",
        "",
        "## Core-hours (one torch thread per run: a run's wall seconds are its core-seconds)",
        "",
        to_markdown(hours),
        "",
        "Killed runs were run again; their column is a lower bound (their last evaluation). "
        "The launch of each run (about 1 s from the warm fork server) is not counted.",
        "",
        "## Code, machine and versions",
        "",
        f"- Commits the records were made with: {commits}. `unknown`: a run started from a "
        "frozen copy made before the copy named its commit (`suite/COMMIT`, written by "
        "`git archive`); its code is main's at that session's stop.",
        f"- Machine: {', '.join(sorted(set(runs['cpu'])))}; torch threads per run: {threads}.",
        f"- Runs started between {started[0]} and {started[-1]}." if started else "",
        "- Packages: " + "; ".join(_versions(runs)) + ".",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m suite.tune.cost", description=__doc__)
    ap.add_argument("--protocol", default="cpu")
    a = ap.parse_args(argv)
    try:
        p = Protocol.load(a.protocol)
        text = document(p)
    except (StudyError, RecordError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    atomic_write_text(p.out / "COMMAND.md", text)
    print(next(line for line in text.splitlines() if line.startswith("Status")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
