"""Fault injection for the reliability tests: a real SIGKILL at a chosen point.

Set ``OPTBENCH_KILL_AT=<point>:<step>`` in a run's environment, with point ``step``
(after that training step) or ``checkpoint`` (mid-write: the temporary checkpoint is
on disk, the rename not done). Unset, this costs one comparison per step.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("OPTBENCH_KILL_AT", "")
KILL_AT = tuple(_SPEC.split(":")) if _SPEC else None


def maybe_kill(point: str, step: int) -> None:
    if KILL_AT is not None and KILL_AT == (point, str(step)):
        os.kill(os.getpid(), signal.SIGKILL)
