"""Read a campaign's tier folder (``make campaign`` -> ``results/cpu``) for its report.

Layout (``suite/conf/protocol/<name>.yaml``; ``results/cpu/README.md``)::

    <root>/<task>/target/target.json, s<seed>/           target-setting runs, never scored
    <root>/<task>/target/flatness.json                    the budget check
    <root>/<task>/<optimizer>/study-<k>/study.json, trials/NNNN/   tuning (never scored)
    <root>/<task>/<optimizer>/reruns/s<seed>/             scored, paired by seed

Nothing here runs code from the files: the protocol and every record are read as data
(``yaml.safe_load``, JSON), and every folder a study names must stay inside its study
(:func:`suite.trust.inside`). A tier is read only when complete (:func:`missing` is empty):
a ranking of a partial tier would compare optimizers scored against different evidence.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from suite.record import read_jsonl, read_summary
from suite.report.read.scored import ScoredRun, best_value, scored_runs
from suite.report.read.targets import Target, TimeToTarget, time_to_target
from suite.trust import inside

PROTOCOLS = Path(__file__).resolve().parents[2] / "conf" / "protocol"


def read_protocol(name: str) -> dict:
    """The committed protocol ``suite/conf/protocol/<name>.yaml`` as plain data."""
    choices = sorted(p.stem for p in PROTOCOLS.glob("*.yaml"))
    if not re.fullmatch(r"[a-z0-9_]+", name) or name not in choices:
        raise ValueError(f"protocol {name!r} is not one of {choices}")
    return yaml.safe_load((PROTOCOLS / f"{name}.yaml").read_text())


@dataclass(frozen=True)
class Workload:
    task: str
    kind: str
    steps: int
    target: Target
    target_seeds: tuple[int, ...]
    target_values: tuple[float, ...]
    flatness: dict | None  # flatness.json: gain, spread, flat, ...
    waiver: str | None


@dataclass(frozen=True)
class Trial:
    task: str
    optimizer: str
    study: int
    number: int
    value: float  # best value of the target's metric over the trial's evaluations; nan if not ok
    ttt: TimeToTarget  # its time to the committed target, from its evaluations


@dataclass(frozen=True)
class Tier:
    root: Path
    protocol: dict
    workloads: dict[str, Workload]
    runs: list[ScoredRun]  # the scored reruns
    summaries: dict[tuple[str, str, int], dict]  # (task, optimizer, seed) -> summary.json
    finals: dict[tuple[str, str, int], dict]  # (task, optimizer, seed) -> last evaluation
    trials: list[Trial]
    env: dict  # env.json of one scored run: machine and versions

    @property
    def optimizers(self) -> list[str]:
        return list(self.protocol["optimizers"])

    @property
    def reference(self) -> str:
        return str(self.protocol["reference"])

    def scored(self, task: str, optimizer: str) -> list[ScoredRun]:
        """The scored reruns of ``optimizer`` on ``task``."""
        return [r for r in self.runs if r.task == task and r.optimizer == optimizer]


def opt_root(root: Path, protocol: dict, optimizer: str) -> Path:
    """The folder that holds ``optimizer``'s records: the tier's root, or the one a
    ``make compare`` names for its candidate (``protocol["roots"]``)."""
    return Path(protocol.get("roots", {}).get(optimizer, root))


def _study_trials(folder: Path) -> list[dict]:
    study = json.loads((folder / "study.json").read_text())
    return [t for t in study.get("trials", []) if t.get("state") == "COMPLETE"]


def missing(root: Path, protocol: dict) -> list[str]:
    """What the protocol asks for that is not on disk yet (empty: the tier is complete)."""
    root, gaps = Path(root), []
    for task in protocol["workloads"]:
        if not (root / task / "target" / "target.json").is_file():
            gaps.append(f"{task}/target")
        for opt in protocol["optimizers"]:
            base = opt_root(root, protocol, opt) / task / opt
            for k in range(int(protocol.get("studies", 0))):  # 0: a transfer tier
                study = base / f"study-{k}"
                n = len(_study_trials(study)) if (study / "study.json").is_file() else 0
                if n < int(protocol["trials_per_study"]):
                    gaps.append(f"{task}/{opt}/study-{k}")
            for seed in protocol["rerun_seeds"]:
                if not (base / "reruns" / f"s{seed}" / "summary.json").is_file():
                    gaps.append(f"{task}/{opt}/reruns")
                    break
    return gaps


def _workload(root: Path, task: str, spec: dict) -> Workload:
    folder = root / task / "target"
    t = json.loads((folder / "target.json").read_text())
    flat = folder / "flatness.json"
    return Workload(
        task,
        str(spec["kind"]),
        int(spec["steps"]),
        Target(str(t["metric"]), float(t["value"]), str(t["direction"])),
        tuple(int(s) for s in t["seeds"]),
        tuple(float(v) for v in t["values"]),
        json.loads(flat.read_text()) if flat.is_file() else None,
        spec.get("budget_waiver"),
    )


def _trials(root: Path, protocol: dict, workloads: dict[str, Workload]) -> list[Trial]:
    out = []
    for task, wl in workloads.items():
        for opt in protocol["optimizers"]:
            for k in range(int(protocol.get("studies", 0))):
                folder = opt_root(root, protocol, opt) / task / opt / f"study-{k}"
                for t in _study_trials(folder):
                    run_dir = inside(folder, t["run_dir"], "a study's run_dir")
                    ttt = time_to_target(run_dir, wl.target)
                    if read_summary(run_dir).get("status") == "ok":
                        best = best_value(read_jsonl(run_dir / "metrics.jsonl"), wl.target)
                    else:  # a diverged trial: no value, and a miss
                        best, ttt = math.nan, TimeToTarget(ttt.step, False)
                    out.append(Trial(task, opt, k, int(t["number"]), best, ttt))
    return out


def load(root: Path, protocol: dict) -> Tier:
    """The whole tier; ValueError naming what is missing when it is not complete."""
    root = Path(root)
    gaps = missing(root, protocol)
    if gaps:
        shown = ", ".join(gaps[:6]) + (f" and {len(gaps) - 6} more" if len(gaps) > 6 else "")
        raise ValueError(
            f"the tier under {root} is not complete ({len(gaps)} parts missing: {shown}); "
            "no table or ranking is drawn from a partial tier: run `make campaign` to finish it"
        )
    workloads = {t: _workload(root, t, s) for t, s in protocol["workloads"].items()}
    targets, seeds = {t: w.target for t, w in workloads.items()}, set(protocol["rerun_seeds"])
    roots = {root, *(opt_root(root, protocol, o) for o in protocol["optimizers"])}
    runs = [  # each optimizer's runs from its own root only
        r
        for where in sorted(roots)
        for r in scored_runs(where, targets)
        if r.optimizer in protocol["optimizers"]
        and opt_root(root, protocol, r.optimizer) == where
        and r.seed in seeds
    ]
    summaries, finals = {}, {}
    for r in runs:
        summaries[r.task, r.optimizer, r.seed] = read_summary(r.folder)
        evals = [e for e in read_jsonl(r.folder / "metrics.jsonl") if e.get("event") == "eval"]
        finals[r.task, r.optimizer, r.seed] = evals[-1] if evals else {}
    env_path = runs[0].folder / "env.json" if runs else None
    env = json.loads(env_path.read_text()) if env_path and env_path.is_file() else {}
    trials = _trials(root, protocol, workloads)
    return Tier(root, protocol, workloads, runs, summaries, finals, trials, env)
