"""The tuning protocol end to end on task=toy: real runs, real Optuna SQLite storage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from suite.record import read_summary
from suite.tune import objective
from suite.tune.__main__ import main as tune_main

ROOT = Path(__file__).resolve().parents[1]
TUNE = [sys.executable, "-m", "suite.tune", "--task", "toy", "--optimizer", "sgd"]
FAST = ["--steps", "40", "--evals", "4", "--heartbeat", "1", "--grace", "2"]
RUN_ARGS = ["--", "threads=1"]


def _complete_trials(out: Path) -> list:
    study = optuna.load_study(study_name="toy.sgd", storage=f"sqlite:///{out / 'study.db'}")
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


@pytest.mark.slow
def test_a_killed_study_resumes_without_duplicated_records(tmp_path):
    out = tmp_path / "study"
    # the search only (reruns are covered by tests/test_compare.py): 3 runs, about 20 s
    cmd = [*TUNE, "--trials", "2", "--out", str(out), *FAST, "--no-reruns", *RUN_ARGS]
    # its own process group, killed whole: the study and its trial's run die together
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    # kill the study while its second trial's run is under way (its folder exists, no summary)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "trials" / "0001" / "config.yaml").exists():
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / "trials" / "0001").exists() and not (out / "study.json").exists()
    time.sleep(3)  # past the grace period: the killed trial's heartbeat is stale
    resumed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1/2 trials complete" in resumed.stdout, resumed.stdout

    complete = _complete_trials(out)
    assert len(complete) == 2, resumed.stdout
    dirs = [t.user_attrs["run_dir"] for t in complete]
    assert dirs == ["trials/0000", "trials/0002"], (
        resumed.stdout
    )  # the killed trial 1 was retried as trial 2
    assert not (out / "trials" / "0001" / "summary.json").exists()  # left as it was killed
    assert len(set(dirs)) == 2  # one record per complete trial, none shared
    for d in dirs:
        assert read_summary(out / d)["status"] == "ok"
    result = json.loads((out / "study.json").read_text())
    assert result["budget"]["trials"] == 2 and result["budget"]["steps"] == 40
    assert result["reruns"] == []
    selected = yaml.safe_load((out / "selected.yaml").read_text())
    best = min(
        complete,
        key=lambda t: (*objective.rank_key(read_summary(out / t.user_attrs["run_dir"])), t.number),
    )
    assert selected["trial"] == best.number == result["selected"]["trial"]
    assert selected["hparams"] == read_summary(out / best.user_attrs["run_dir"])["hparams"]

    # rerunning the finished command runs nothing new and overwrites nothing
    before = sorted(p.name for p in (out / "trials").iterdir())
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "2/2 trials complete" in again.stdout
    assert sorted(p.name for p in (out / "trials").iterdir()) == before


@pytest.mark.parametrize(
    "args, words",
    [
        (["--task", "nope", "--optimizer", "sgd", "--trials", "2"], "unknown task 'nope'; valid:"),
        (
            ["--task", "toy", "--optimizer", "nope", "--trials", "2"],
            "unknown optimizer 'nope'; valid:",
        ),
        (["--task", "toy", "--optimizer", "sgd", "--trials", "0"], "invalid trials: 0"),
        (
            ["--task", "toy", "--optimizer", "sgd", "--trials", "2", "--seeds", "0", "1", "2"],
            "none equal to the tuning seed",
        ),
        (
            ["--task", "toy", "--optimizer", "sgd", "--trials", "2", "--sampler", "grid"],
            "unknown sampler 'grid'",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_before_any_work(tmp_path, capsys, args, words):
    out = tmp_path / "never"
    assert tune_main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not out.exists()


def test_a_resumed_study_must_keep_its_budget(tmp_path, capsys):
    out = tmp_path / "s"
    from suite.tune.study import open_study
    from suite.tune.study_config import StudyConfig

    open_study(StudyConfig("toy", "sgd", 2, out, steps=40))
    assert (
        tune_main(
            [
                "--task",
                "toy",
                "--optimizer",
                "sgd",
                "--trials",
                "2",
                "--steps",
                "50",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "another budget" in capsys.readouterr().err


@pytest.mark.slow
def test_trials_run_through_a_hydra_launcher(tmp_path):
    out = tmp_path / "study"
    cmd = [*TUNE, "--trials", "1", "--out", str(out), *FAST, "--no-reruns"]
    done = subprocess.run(
        [*cmd, "--launcher", "joblib", *RUN_ARGS], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = out / "trials" / "0000"
    assert (run / "multirun.yaml").is_file() and read_summary(run)["status"] == "ok"


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "bnb_adamw8bit", "torch_adam"])
def test_a_task_that_fixes_a_hyperparameter_is_searched_without_it(optimizer):
    """DeepOBS's problems are unregularized: weight_decay leaves the search and every run
    gets weight_decay=0; a task that fixes nothing searches it (conf/optimizer/*.yaml)."""
    from suite.tune.study_config import StudyConfig

    deepobs = StudyConfig("fmnist_2c2d", optimizer, 2, Path("unused"))
    assert "weight_decay" not in [p.path for p in deepobs.check()]
    assert deepobs.fixed_hparams() == {"weight_decay": 0.0}
    free = StudyConfig("cnn_fashion", optimizer, 2, Path("unused"))
    assert "weight_decay" in [p.path for p in free.check()]
    assert free.fixed_hparams() == {}
