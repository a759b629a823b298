"""A study's processes: workers sharing one storage, and the run each one starts.

- :func:`budget_taken`: several ``suite.tune`` workers on one OUT share the trial budget.
  Optuna numbers trials in the storage's own transaction, so a trial knows which trials
  came before it; trial ``k`` may run only if fewer than ``trials`` trials numbered below
  ``k`` are RUNNING or COMPLETE. Two workers asking at once thus never overshoot: the
  later one is pruned without a run and waits for the other's trial to end.
- :func:`die_with_parent`: a trial's ``suite.run`` gets SIGTERM when its ``suite.tune``
  dies, however it dies (SIGKILL included), via Linux's ``PR_SET_PDEATHSIG``; the run then
  checkpoints and records ``interrupted``, so no orphan trains on beside a rerun.
- :func:`running`: whether a run folder's lock is held by a live process (``suite.runner.lock``).
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

from suite.runner.lock import LOCK_NAME

PR_SET_PDEATHSIG = 1


def budget_taken(study: optuna.Study, trials: int, before: int | None = None) -> bool:
    """Whether ``trials`` trials (numbered below ``before``, if given) are RUNNING or
    COMPLETE; stale RUNNING trials of a dead worker are failed first (heartbeat)."""
    optuna.storages.fail_stale_trials(study)
    states = (TrialState.RUNNING, TrialState.COMPLETE)
    taken = study.get_trials(deepcopy=False, states=states)
    return sum(before is None or t.number < before for t in taken) >= trials


def die_with_parent() -> None:
    """``preexec_fn`` of a child run: SIGTERM to it when this process dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl: go now
        os.kill(os.getpid(), signal.SIGTERM)


def running(run_dir: Path) -> bool:
    """Whether a live process holds ``run_dir``'s run lock (probed with a shared flock,
    nothing written: the holder's exclusive lock refuses it)."""
    try:
        fd = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False  # no lock file: no run ever held this folder
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
