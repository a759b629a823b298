"""Warm runs (suite.tune.warm): a run forked from the fork server is the same run as
``python -m suite.run`` started cold: same metrics bit for bit, same exit codes, this
process's environment and working directory at launch, output in the run's log."""

from __future__ import annotations

import json
import os

import pytest

from suite.tune import warm
from tests.conftest import run_suite

pytestmark = pytest.mark.skipif(not warm.available(), reason="no fork server on this platform")

RUN = ["task=fmnist_mlp", "optimizer=adam", "steps=6", "eval_every=3", "logger=none"]
RUN += ["progress=none", "threads=1", "seed=3"]


def metrics(run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [
        {k: v for k, v in r.items() if not any(w in k for w in ("time", "sec", "elapsed"))}
        for r in rows
    ]


def test_a_warm_run_writes_the_records_a_cold_run_writes(tmp_path):
    cold, hot = tmp_path / "cold", tmp_path / "warm"
    run_suite(*RUN, run_dir=cold)
    log = tmp_path / "warm.log"
    log.write_text("")
    assert warm.run([*RUN, f"hydra.run.dir={hot}"], log) == 0
    assert metrics(hot) == metrics(cold)
    assert len(metrics(hot)) >= 2
    assert "[ok]" in log.read_text()
    cold_env = json.loads((cold / "env.json").read_text())
    hot_env = json.loads((hot / "env.json").read_text())
    assert hot_env["command"][:-1] == cold_env["command"][:-1]  # all but hydra.run.dir


def test_a_warm_run_takes_the_environment_and_directory_of_its_launch(tmp_path, monkeypatch):
    warm.run(["--help"], tmp_path / "first.log")  # the fork server is up before the change
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPTBENCH_DATA", str(tmp_path / "no-data-here"))
    log = tmp_path / "run.log"
    log.write_text("")
    code = warm.run([*RUN, "hydra.run.dir=rel"], log)
    assert code == 2, log.read_text()  # refused: the data folder named in the new env is empty
    assert "no-data-here" in log.read_text()
    assert os.environ["OPTBENCH_DATA"].endswith("no-data-here")


def test_bad_input_to_a_warm_run_exits_2_with_one_line(tmp_path):
    log = tmp_path / "bad.log"
    log.write_text("")
    code = warm.run(["task=fmnist_mlp", "optimizer=adam", "optimizer.lr=-1", "logger=none"], log)
    assert code == 2
    assert "lr" in log.read_text() and "-1" in log.read_text(), log.read_text()
    assert len(log.read_text().strip().splitlines()) == 1
