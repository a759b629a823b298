"""Committed baselines -> ``make compare`` -> leaderboard, and test metrics never choose.

Slow (about 3 minutes on 2 cores): real runs of task=toy with real Optuna SQLite studies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from suite.record import read_jsonl, read_summary, rewrite_jsonl, write_json
from suite.report.documents.protocol import write as write_report
from suite.tune.study import open_study, select
from suite.tune.study_config import StudyConfig

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def baselines(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("baselines")
    cmd = [sys.executable, "-m", "suite.tune.baselines", "--out", str(out)]
    cmd += ["--tasks", "toy:30", "--optimizers", "sgd", "adamw", "--trials", "2"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_compare_writes_a_leaderboard_against_the_baselines_with_their_budget(baselines, tmp_path):
    out = tmp_path / "mine"
    cmd = [sys.executable, "-m", "suite.tune.compare", "--optimizer", "adam"]
    cmd += ["--out", str(out), "--baselines", str(baselines)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    mine = json.loads((out / "studies" / "toy" / "adam" / "study.json").read_text())
    theirs = json.loads((baselines / "toy" / "sgd" / "study.json").read_text())
    assert mine["budget"] == theirs["budget"]  # same trials, steps, evals, sampler, seeds
    assert sorted(r["seed"] for r in mine["reruns"]) == [1, 2, 3]
    for r in mine["reruns"]:  # fresh seeds at the selected hyperparameters
        s = read_summary(out / "studies" / "toy" / "adam" / r["run_dir"])
        assert s["seed"] == r["seed"] and s["hparams"] == mine["selected"]["hparams"]
    board = pd.read_csv(out / "leaderboard.csv")
    assert sorted(board["optimizer"]) == ["adam", "adamw", "sgd"]
    pairs = pd.read_csv(out / "pairwise.csv")
    assert set(pairs["candidate"]) == {"adam"} and set(pairs["other"]) == {"adamw", "sgd"}
    report = (out / "report.md").read_text()
    assert "## Leaderboard" in report and "p (steps)" in report and "performance_profile" in report
    assert (baselines / "COMMAND.md").read_text().count("2 trials per optimizer") == 1


def _corrupt_test_metrics(folder: Path) -> int:
    """Every test/* value of every record below ``folder`` replaced; returns how many."""
    n = 0
    for summary_path in folder.rglob("summary.json"):
        run = summary_path.parent
        s = read_summary(run)
        for part in ("final", "best"):
            for k in list(s.get(part) or {}):
                if k.startswith("test/"):
                    s[part][k] = -1e6 if "acc" in k else 1e6
                    n += 1
        write_json(summary_path, s)
        events = read_jsonl(run / "metrics.jsonl")
        for ev in events:
            for k in list(ev):
                if k.startswith("test/"):
                    ev[k] = 1e6
                    n += 1
        rewrite_jsonl(run / "metrics.jsonl", events)
    return n


def test_corrupting_test_metrics_changes_no_selection_and_no_ranking(baselines, tmp_path):
    target = read_summary(baselines / "toy" / "sgd" / "reruns" / "s1")["target"]["metric"]
    if not target.startswith("val/"):
        pytest.skip(f"toy's target is {target}; this branch predates the val split")
    copy = tmp_path / "copy"
    shutil.copytree(baselines, copy)
    assert _corrupt_test_metrics(copy) > 0

    def chosen(root: Path) -> dict:
        picks = {}
        for opt in ("sgd", "adamw"):
            budget = json.loads((root / "toy" / opt / "study.json").read_text())["budget"]
            cfg = StudyConfig(  # the study's own budget: open_study refuses any other
                "toy", opt, budget["trials"], root / "toy" / opt, steps=budget["steps"],
                evals=budget["evals"], extra=tuple(budget["extra"]),
                sampler_seed=budget["sampler_seed"], tune_seed=budget["tune_seed"],
            )  # fmt: skip
            picks[opt] = select(cfg, open_study(cfg)).number
        return picks

    assert chosen(copy) == chosen(baselines)
    write_report([baselines / "toy"], tmp_path / "a", baselines / "targets.json", None, "a")
    write_report([copy / "toy"], tmp_path / "b", baselines / "targets.json", None, "b")
    for name in ("leaderboard.csv", "pairwise.csv", "profile_steps.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
