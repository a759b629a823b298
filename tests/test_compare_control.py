"""``make compare``: one verdict line per workload, and a reference control interleaved with
the candidate (candidate, control, candidate, ... at the same seeds).

The end-to-end test is slow (about 2 minutes on one core): real runs of task=toy, real
Optuna SQLite studies. The others read the committed baselines and are fast.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from suite.record import read_summary
from suite.report.compute.verdicts import workload_verdicts
from suite.report.read.targets import read_targets
from suite.tune import compare, control

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ROOT / "results" / "baselines"
WORDS = ("better", "worse", "equivalent within", "inconclusive")


def test_verdicts_are_one_line_per_workload_and_identical_math_is_equivalent():
    lines = workload_verdicts(
        BASELINES, BASELINES, BASELINES / "targets.json", "adam", "torch_adamw"
    )
    tasks = sorted(read_targets(BASELINES / "targets.json"))
    assert [line.split(":", 1)[0] for line in lines] == tasks
    for line in lines:
        word = line.split(": ", 1)[1]
        assert word.startswith(WORDS), line
        assert "Holm p=" in line and "reach " in line and "\n" not in line
    # adam and torch_adamw without weight decay run the same math on the image tasks
    same = [line for line in lines if line.startswith(("fmnist_2c2d", "mnist_mlp"))]
    assert all("equivalent within ±0.005, effect best val/acc +0 " in line for line in same)


def test_reference_is_the_committed_adamw_and_bad_names_are_refused(tmp_path, capsys):
    tasks = ["fmnist_2c2d", "lm_shakespeare"]
    assert control.pick_reference(BASELINES, tasks) == "torch_adamw"
    assert control.pick_reference(BASELINES, tasks, "adamw") == "adamw"
    with pytest.raises(control.StudyError, match="valid: adam, adamw"):
        control.pick_reference(BASELINES, tasks, "torch_adamw_fused")
    argv = ["--optimizer", "adam", "--out", str(tmp_path / "o"), "--baselines", str(BASELINES)]
    assert compare.main([*argv, "--tasks", "toy"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'toy'" in err and "valid: fmnist_2c2d, fmnist_mlp" in err
    assert not (tmp_path / "o").exists()  # refused before any work


def test_step_time_ratio_is_the_geometric_mean_of_the_paired_ratios(tmp_path):
    """Known answer: committed runs laid out as a compare's, ratio = exp(mean log ratio)."""
    runs = []
    for seed in (1, 2, 3):
        for who, opt, where in (
            ("candidate", "adamw", "studies"),
            ("control", "torch_adamw", "control"),
        ):
            rel = f"{where}/fmnist_mlp/{opt}/reruns/s{seed}"
            shutil.copytree(BASELINES / "fmnist_mlp" / opt / "reruns" / f"s{seed}", tmp_path / rel)
            runs.append({"who": who, "optimizer": opt, "seed": seed, "run_dir": rel})
            runs[-1]["ran_now"] = True
    timeline = tmp_path / "control" / "fmnist_mlp" / control.TIMELINE
    timeline.write_text(json.dumps({"runs": runs}))
    target = read_targets(BASELINES / "targets.json")["fmnist_mlp"]
    line = control.timing_line(timeline, target)

    def t(opt, s):
        return read_summary(BASELINES / "fmnist_mlp" / opt / "reruns" / f"s{s}")[
            "median_step_time_s"
        ]

    ratio = math.exp(sum(math.log(t("adamw", s) / t("torch_adamw", s)) for s in (1, 2, 3)) / 3)
    assert line.startswith(f"step time x{ratio:.3g} [")
    assert "of the interleaved torch_adamw control" in line and "indicative" not in line
    runs[0]["ran_now"] = False
    timeline.write_text(json.dumps({"runs": runs}))
    assert control.timing_line(timeline, target).endswith("indicative)")
    runs[0]["run_dir"] = "../../outside"
    timeline.write_text(json.dumps({"runs": runs}))
    with pytest.raises(ValueError, match="leaves"):
        control.timing_line(timeline, target)


@pytest.mark.slow
def test_compare_interleaves_a_control_and_writes_one_verdict_line(tmp_path):
    env_cmd = [sys.executable, "-m"]
    base = tmp_path / "baselines"
    cmd = [*env_cmd, "suite.tune.baselines", "--out", str(base), "--tasks", "toy:30"]
    cmd += ["--optimizers", "sgd", "torch_adamw", "--trials", "2", "--jobs", "1"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "cmp"
    cmd = [*env_cmd, "suite.tune.compare", "--optimizer", "adam", "--out", str(out)]
    done = subprocess.run(
        [*cmd, "--baselines", str(base)], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr

    runs = json.loads((out / "control" / "toy" / control.TIMELINE).read_text())["runs"]
    assert [(r["who"], r["seed"]) for r in runs] == [
        (who, s) for s in (1, 2, 3) for who in ("candidate", "control")
    ]
    assert all(r["ran_now"] for r in runs)
    for before, after in zip(runs, runs[1:], strict=False):  # one after the other, in order
        assert datetime.fromisoformat(before["ended_utc"]) <= datetime.fromisoformat(
            after["started_utc"]
        )
    committed = json.loads((base / "toy" / "torch_adamw" / "study.json").read_text())
    for r in runs:
        s = read_summary(out / r["run_dir"])
        assert s["status"] == "ok" and s["seed"] == r["seed"] and s["optimizer"] == r["optimizer"]
        if r["who"] == "control":  # the reference at its committed hyperparameters
            assert s["optimizer"] == "torch_adamw"
            assert s["hparams"] == committed["selected"]["hparams"]

    text = (out / "verdicts.md").read_text()
    assert text.splitlines()[2].startswith("How to read this")
    block = text.split("```\n")[1].strip().splitlines()
    assert len(block) == 1 and block[0].startswith("toy: ")
    assert block[0].split(": ", 1)[1].startswith(WORDS)
    assert "of the interleaved torch_adamw control" in block[0]
    assert "reproduces the committed torch_adamw best val/acc at 3/3 seeds" in text
    study = json.loads((out / "studies" / "toy" / "adam" / "study.json").read_text())
    assert [r["seed"] for r in study["reruns"]] == [1, 2, 3]


def test_a_candidate_with_a_newer_target_is_kept_when_targets_are_committed(tmp_path):
    """The committed baselines predate a target change: their records carry the old target.
    Scored against committed targets, the candidate's runs stay in the tables."""
    from suite.record import write_json
    from suite.report.read.collect import collect

    dirs = []
    for opt in ("adamw", "sgd"):
        for s in (1, 2, 3):
            d = tmp_path / opt / f"s{s}"
            shutil.copytree(BASELINES / "mnist_mlp" / opt / "reruns" / f"s{s}", d)
            dirs.append(d)
            if opt == "sgd":  # the candidate, made after the task's target moved
                summary = read_summary(d)
                summary["target"]["value"] = 0.97
                write_json(d / "summary.json", summary)
    for kept in (collect(dirs), collect(dirs, check_targets=False)):
        assert len(kept.runs) == 6 and kept.problems.empty
    flagged = collect(dirs).notes  # the stale target is named, never a reason to drop
    assert any("stale targets on mnist_mlp" in n and "0.97" in n for n in flagged), flagged
