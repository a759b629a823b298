"""Several tune workers on one study, and the runs they start (issue 22)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState

from suite.runner.lock import RunLock
from suite.tune.study import open_study
from suite.tune.study_config import StudyConfig
from suite.tune.workers import budget_taken, running


def test_a_later_trial_sees_the_budget_taken_by_earlier_running_ones(tmp_path):
    """Before: each worker counted only COMPLETE trials, so two workers asking at once with
    2 of 3 done both ran a trial (4 complete, study.json said 3)."""
    study = open_study(StudyConfig("toy", "sgd", 3, tmp_path))  # real sqlite storage
    for _ in range(2):
        study.add_trial(optuna.trial.create_trial(value=1.0))
    mine, other = study.ask(), study.ask()  # two workers, numbered by the storage
    assert (mine.number, other.number) == (2, 3)
    assert not budget_taken(study, 3, before=mine.number)  # the earlier one runs
    assert budget_taken(study, 3, before=other.number)  # the later one must not
    assert budget_taken(study, 3)  # and no worker starts another
    study.tell(other, state=TrialState.PRUNED)  # what the later worker's trial becomes
    study.tell(mine, state=TrialState.FAIL)  # the running one crashed: room again
    assert not budget_taken(study, 3)


def test_running_sees_a_live_run_lock_and_writes_nothing(tmp_path):
    assert not running(tmp_path)  # never locked
    with RunLock(tmp_path):
        holder = (tmp_path / "run.lock").read_bytes()
        assert running(tmp_path)
        assert (tmp_path / "run.lock").read_bytes() == holder
    assert not running(tmp_path)  # the holder is gone (a killed run's lock drops too)


PARENT = """
import subprocess, sys, time
from suite.tune.workers import die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         preexec_fn=die_with_parent)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_trial_run_dies_with_its_killed_tune():
    """Before: launch() started suite.run without PR_SET_PDEATHSIG, so after SIGKILL to
    suite.tune the trial's run trained on (and a rerun started a second one)."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the child outlived its killed parent")


def test_a_corrupt_or_foreign_study_db_is_one_line(tmp_path):
    """Before: optuna/sqlalchemy's 76-line traceback."""
    import sqlite3

    import pytest

    from suite.tune.study_config import StudyError

    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "study.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 300)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / "study.db") as db:  # another program's database
        db.execute("CREATE TABLE alembic_version (version_num TEXT)")
        db.execute("INSERT INTO alembic_version VALUES ('not-optuna')")
    for out in (tmp_path / "corrupt", foreign):
        with pytest.raises(StudyError) as e:
            open_study(StudyConfig("toy", "sgd", 1, out))
        assert "\n" not in str(e.value) and "study.db" in str(e.value)
