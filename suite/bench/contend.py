"""A second process busy on one core, for the step benchmark's contended mode.

``python -m suite.bench.step --contended`` times every entry twice per round, once with
the machine to itself and once with :class:`BusyCore` running: a Python busy loop (one
thread, no memory traffic) pinned to the last core this process may use. Between the
contended halves the loop is stopped with SIGSTOP and resumed with SIGCONT, so quiet and
contended timings interleave round by round and a burst of load from elsewhere lands on
both alike; it is killed at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

BUSY_LOOP = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


class BusyCore:
    """A busy loop pinned to one core, started paused; ``with busy.running():`` lets it
    run. Use as a context manager: the process is killed on exit."""

    def __init__(self, core: int | None = None) -> None:
        self.core = max(os.sched_getaffinity(0)) if core is None else core
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> BusyCore:
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", BUSY_LOOP, str(self.core)])
        self._stop()
        return self

    def _stop(self) -> None:
        """SIGSTOP, and wait until it has stopped: the next timing is quiet."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        os.waitpid(self.proc.pid, os.WUNTRACED)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    @contextmanager
    def running(self) -> Iterator[None]:
        if self.proc is None:
            raise RuntimeError("BusyCore is not started: use it as a context manager")
        os.kill(self.proc.pid, signal.SIGCONT)
        try:
            yield
        finally:
            self._stop()
