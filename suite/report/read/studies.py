"""Tuning studies on disk (``study.json`` + the records it names) -> frames for scoring.

A study folder is what ``make tune`` writes (:mod:`suite.tune.study`): ``study.json``,
``trials/<n>/`` and ``reruns/s<seed>/``, each a run record. Only the reruns (fresh seeds
at the selected hyperparameters) are scored; the trials are the search (heatmaps).
Each record is checked by :func:`suite.report.read.rows.run_row`, as the tables' are; only
the target's metric (a ``val/*`` metric) and its evaluation times are read here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from suite.record import RecordError, read_jsonl, read_summary
from suite.report.read.rows import run_row

STUDY_FILE = "study.json"


@dataclass
class Study:
    folder: Path
    meta: dict  # study.json

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def optimizer(self) -> str:
        return self.meta["optimizer"]

    @property
    def budget(self) -> dict:
        return self.meta["budget"]

    def rerun_dirs(self) -> list[Path]:
        return [self.folder / r["run_dir"] for r in self.meta["reruns"]]

    def trial_dirs(self) -> list[Path]:
        return [self.folder / t["run_dir"] for t in self.meta["trials"] if t.get("status")]


def find_studies(roots: list[Path]) -> list[Study]:
    """Every ``study.json`` below ``roots`` (a root may itself be a study)."""
    found: dict[Path, Study] = {}
    for root in roots:
        for path in sorted(Path(root).rglob(STUDY_FILE)):
            try:
                meta = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise RecordError(f"{path}: unreadable study ({e})") from e
            for key in ("task", "optimizer", "budget", "reruns", "trials", "selected"):
                if key not in meta:
                    raise RecordError(f"{path}: not a study (no {key!r})")
            found[path.parent.resolve()] = Study(path.parent, meta)
    return list(found.values())


def eval_curve(run_dir: Path, metric: str) -> list[tuple[float, float, float]]:
    """(step, elapsed training seconds, value of ``metric``) at every evaluation of a run."""
    out = []
    for ev in read_jsonl(run_dir / "metrics.jsonl"):
        if ev.get("event") == "eval" and metric in ev:
            out.append((float(ev["step"]), float(ev.get("elapsed_s", math.nan)), float(ev[metric])))
    return out


def run_rows(studies: list[Study], which: str = "reruns") -> pd.DataFrame:
    """One row per run of the studies (``which``: reruns or trials) with what scoring needs."""
    rows = []
    for st in studies:
        dirs = st.rerun_dirs() if which == "reruns" else st.trial_dirs()
        for d in dirs:
            s = read_summary(d)
            checked = run_row(d, s)  # the one validation of a record (a RecordError names it)
            metric = checked["target_metric"]
            rows.append(
                {
                    "task": st.task,
                    "optimizer": st.optimizer,
                    "impl": s.get("impl"),
                    "family": s.get("family"),
                    "state_bits": s.get("state_bits"),
                    "study": str(st.folder),
                    "folder": str(d),
                    "seed": s.get("seed"),
                    "status": s["status"],
                    "metric": metric,
                    "direction": checked["target_direction"],
                    "max_steps": s.get("max_steps"),
                    "best_val": checked["best_target"],
                    "trials": st.budget.get("trials"),
                    "steps_budget": st.budget.get("steps"),
                    "hparams": s.get("hparams"),
                    "curve": eval_curve(d, metric) if (d / "metrics.jsonl").exists() else [],
                }
            )
    return pd.DataFrame(rows)
