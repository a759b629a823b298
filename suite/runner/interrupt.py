"""SIGINT, SIGTERM and a cluster's preemption signal end a run cleanly and resumably.

:class:`StopSignals` (a context manager around the loop) turns the first such signal
into a request the loop reads at the end of its step (``stop()``): the loop writes a
checkpoint when checkpointing is on and returns status ``interrupted`` with the step;
the run records it, prints one line and exits with 128 + the signal number. A second
signal while stopping acts at once (the previous handler, e.g. KeyboardInterrupt).

Under submitit (``hydra/launcher=slurm`` or ``submitit_local``) the preemption or
timeout signal (SIGUSR2, ``SUBMITIT_PREEMPT_SIGNAL``) is also caught: once the record
is written, :func:`finish` hands the signal to submitit's own handler, which requeues
the job with the same overrides, and the requeued job sees the ``interrupted`` record
with ``requeue: true`` and resumes by itself (:func:`resumes_itself`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from suite import record


def _preempt_signal() -> signal.Signals | None:
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    from submitit.core.job_environment import JobEnvironment

    return JobEnvironment._usr_sig()


class StopSignals:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}
        preempt = _preempt_signal()
        self.preempt = int(preempt) if preempt is not None else None
        self.signals = [signal.SIGINT, signal.SIGTERM] + ([preempt] if preempt else [])

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # a second signal: stop now, as without us
            previous = self.previous.get(signum)
            if callable(previous):
                previous(signum, frame)
            elif signum == signal.SIGINT:
                raise KeyboardInterrupt
            else:
                sys.exit(128 + signum)
            return
        self.signum = signum

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def requeues(self) -> bool:
        return self.signum is not None and self.signum == self.preempt

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self.previous[int(s)] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, previous in self.previous.items():
            signal.signal(s, previous)


# the StopSignals of the last run in this process, for finish()
LAST: list[StopSignals] = []


def track(stop: StopSignals) -> StopSignals:
    LAST[:] = [stop]
    return stop


def note(stop: StopSignals, steps: int, checkpointed: bool) -> dict:
    """The summary fields of an interrupted run."""
    where = "a checkpoint at that step" if checkpointed else "no checkpoint (checkpoint_every=0)"
    return {
        "error": f"interrupted by {stop.name} at step {steps}; {where}",
        "signal": stop.name,
        "requeue": stop.requeues,
    }


def finish(summary: dict, run_dir: Path) -> None:
    """One line on stderr, then: hand a preemption to submitit (requeue) or exit 128+signum."""
    stop = LAST[0] if LAST else None
    how = (
        "requeued by submitit; it resumes by itself"
        if stop is not None and stop.requeues
        else f"resume with hydra.run.dir={run_dir} resume=true"
    )
    print(f"error: {summary['error']}: {how}", file=sys.stderr, flush=True)
    if stop is not None and stop.requeues:
        previous = stop.previous.get(stop.signum)
        if callable(previous):
            previous(stop.signum, None)  # submitit: checkpoint_and_try_requeue, then exits
    sys.exit(128 + (stop.signum if stop and stop.signum else signal.SIGTERM))


def resumes_itself(run_dir: Path) -> bool:
    """A job requeued by submitit after a preemption: its record says so."""
    if not os.environ.get("SUBMITIT_EXECUTOR") or not (Path(run_dir) / "summary.json").exists():
        return False
    try:
        done = record.read_summary(run_dir)
    except record.RecordError:
        return False
    return done["status"] == "interrupted" and bool(done.get("requeue"))
