"""Fault injection for the reliability tests and ``make reliability``.

Three hooks, each set through the run's environment and free when unset (one
comparison per step):

``OPTBENCH_KILL_AT=<point>:<step>``
    a real SIGKILL with point ``step`` (after that training step) or
    ``checkpoint`` (mid-write: the temporary checkpoint is on disk, the rename
    not done). See :func:`maybe_kill`.
``OPTBENCH_SIGNAL_AT=<SIGNAME>:<step>``
    a real signal (``SIGTERM``, ``SIGINT``, ``SIGUSR2``) sent to the run itself after
    that training step, as ``kill`` or Ctrl-C from outside would at that moment.
``OPTBENCH_NAN_AT=<step>:<name substring>``
    at the top of loop step ``<step>`` (0-based, before its forward pass) every
    parameter whose qualified name contains the substring is filled with NaN, so
    that step's loss is non-finite and the divergence path runs end to end
    (``OPTBENCH_NAN_AT=3:weight``). See :func:`maybe_poison`.
"""

from __future__ import annotations

import os
import signal

import torch
from torch import nn

_SPEC = os.environ.get("OPTBENCH_KILL_AT", "")
KILL_AT = tuple(_SPEC.split(":")) if _SPEC else None


_SIGNAL_SPEC = os.environ.get("OPTBENCH_SIGNAL_AT", "")
SIGNAL_AT = tuple(_SIGNAL_SPEC.split(":")) if _SIGNAL_SPEC else None


def maybe_kill(point: str, step: int) -> None:
    if KILL_AT is not None and KILL_AT == (point, str(step)):
        os.kill(os.getpid(), signal.SIGKILL)
    if point == "step" and SIGNAL_AT is not None and SIGNAL_AT[1] == str(step):
        os.kill(os.getpid(), getattr(signal, SIGNAL_AT[0]))  # handled: the run stops cleanly


def parse_nan_at(spec: str) -> tuple[int, str] | None:
    """``"<step>:<substring>"`` -> (step, substring); ``""`` -> None."""
    if not spec:
        return None
    step, sep, pattern = spec.partition(":")
    if not sep or not step.strip().isdigit():
        raise ValueError(
            f"invalid OPTBENCH_NAN_AT={spec!r}: expected <step>:<parameter name substring>, "
            "e.g. 3:weight"
        )
    return int(step), pattern


_NAN_SPEC = os.environ.get("OPTBENCH_NAN_AT", "")
try:
    NAN_AT = parse_nan_at(_NAN_SPEC)
    _NAN_ERROR = None
except ValueError as e:  # raised at the first step, where the run records it as failed
    NAN_AT, _NAN_ERROR = (-1, ""), e


@torch.no_grad()
def maybe_poison(model: nn.Module, step: int) -> None:
    """Fill the parameters ``OPTBENCH_NAN_AT`` names with NaN at its step (else nothing)."""
    if NAN_AT is None:
        return
    if _NAN_ERROR is not None:
        raise _NAN_ERROR
    at, pattern = NAN_AT
    if step != at:
        return
    hit = [p for name, p in model.named_parameters() if pattern in name]
    if not hit:
        names = ", ".join(name for name, _ in model.named_parameters())
        raise ValueError(f"OPTBENCH_NAN_AT: no parameter name contains {pattern!r}; names: {names}")
    for p in hit:
        p.fill_(float("nan"))
