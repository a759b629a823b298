"""Progress: a rich bar with loss and step rate on a terminal, plain lines in CI/logs."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

MODES = ("auto", "bar", "plain", "none")


def _interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def make_progress(mode: str, total: int, label: str) -> Iterator[Callable[[int, float], None]]:
    """Yield ``update(step, loss)``. mode: auto | bar | plain | none."""
    if mode not in MODES:
        raise ValueError(f"invalid progress {mode!r}; valid: {', '.join(MODES)}")
    if mode == "none":
        yield lambda step, loss: None
        return
    if mode == "bar" or (mode == "auto" and _interactive()):
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[rate]:.1f} it/s"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=False) as bar:
            job = bar.add_task(label, total=total, loss=float("nan"), rate=0.0)
            start = time.perf_counter()
            first: list[int] = []

            def update(step: int, loss: float) -> None:
                first or first.append(step - 1)
                rate = (step - first[0]) / max(time.perf_counter() - start, 1e-9)
                bar.update(job, completed=step, loss=loss, rate=rate)

            yield update
        return
    every = max(1, total // 10)
    start = time.perf_counter()

    def update(step: int, loss: float) -> None:
        if step % every == 0 or step == total:
            rate = step / max(time.perf_counter() - start, 1e-9)
            print(f"{label} step {step}/{total} loss {loss:.4f} ({rate:.1f} it/s)", flush=True)

    yield update
