"""One run per run folder: an OS-level lock held for the run's life.

``RunLock(run_dir)`` takes ``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``<run_dir>/run.lock``
and writes the holder (pid, host) into it; a second process that tries the same
folder gets :class:`RecordError` naming that holder. The kernel drops the lock
when the holder exits, however it exits (SIGKILL included), so a stale lock file
never blocks a resume. The file stays in the folder (unlinking a flock'd file
races with the next opener).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from suite.record import RecordError

LOCK_NAME = "run.lock"


class RunLock:
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace")
            os.close(fd)
            try:
                who = json.loads(holder)
                who = f"pid {who['pid']} on {who['host']}"
            except (ValueError, KeyError, TypeError):
                who = "another process"
            raise RecordError(
                f"run folder {self.path.parent} is in use by {who}; "
                "wait for it to finish or use another hydra.run.dir"
            ) from None
        try:
            os.ftruncate(fd, 0)
            holder = {"pid": os.getpid(), "host": socket.gethostname()}
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError as e:  # e.g. a full disk: name the file
            os.close(fd)
            raise OSError(e.errno, e.strerror, str(self.path)) from None
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __del__(self) -> None:
        self.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
