"""No oversubscription: jobs of a parallel sweep on one machine share the cores
(suite/runner/threads.py), through a real joblib multirun of the toy task, read from the records."""

from __future__ import annotations

import json

import pytest

from suite.runner.threads import cores, threads_for_run
from tests.conftest import run_suite

JOBLIB = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"}
SUBMITIT = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"}


@pytest.mark.parametrize(
    "threads,launcher,expected",
    [
        (3, {**JOBLIB, "n_jobs": 2}, 3),  # the user's choice stands
        (None, None, None),  # a single run: torch's default
        (None, {**SUBMITIT, "n_jobs": 2}, None),  # not a local parallel launcher
        (None, {**JOBLIB, "n_jobs": 1}, cores()),
        (None, {**JOBLIB, "n_jobs": 2}, max(1, cores() // min(2, cores()))),
        (None, {**JOBLIB, "n_jobs": -1}, 1),  # all cores: one thread each
        (None, {**JOBLIB, "n_jobs": 10 * cores()}, 1),  # more jobs than cores
    ],
)
def test_threads_for_run(threads, launcher, expected):
    assert threads_for_run(threads, launcher or {}) == expected


@pytest.mark.parametrize(
    "threads", [None, pytest.param(2, marks=pytest.mark.slow)], ids=["unset", "user"]
)
@pytest.mark.slow
def test_joblib_sweep_jobs_x_threads_within_the_cores(tmp_path, threads):
    """Two jobs at once through Hydra's joblib launcher: each record's torch_threads is
    cores // 2 (jobs x threads <= cores), or exactly the user's ``threads``. (joblib's
    loky workers limit OpenMP to cores // n_jobs by themselves too; the suite's rule
    holds whatever the backend, and threads=2 shows the user's choice wins over both.)"""
    overrides = [
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "task=toy",
        "optimizer=sgd",
        "seed=0,1",
        "steps=5",
        "logger=none",
        f"hydra.sweep.dir={tmp_path}",
    ]
    if threads is not None:
        overrides.append(f"threads={threads}")
    run_suite(*overrides, multirun=True, timeout=300)
    envs = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/env.json"))]
    assert len(envs) == 2
    expected = threads if threads is not None else max(1, cores() // min(2, cores()))
    assert [e["torch_threads"] for e in envs] == [expected, expected]
