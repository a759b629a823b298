"""Shared test setup: the real offline datasets in ../shared/data when present,
W&B offline, a fixed small thread count so the suite behaves on 2 cores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

if "OPTBENCH_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["OPTBENCH_DATA"] = str(SHARED_DATA)
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.pop("WANDB_API_KEY", None)
torch.set_num_threads(min(2, torch.get_num_threads()))


def run_suite(
    *overrides: str,
    run_dir: Path | None = None,
    multirun: bool = False,
    timeout: float = 300,
    check: bool = True,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    """Run the real entry point ``python -m suite.run`` in a subprocess."""
    cmd = [sys.executable, "-m", "suite.run"]
    if multirun:
        cmd.append("-m")
    cmd += list(overrides)
    if run_dir is not None:
        cmd.append(f"hydra.run.dir={run_dir}")
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture
def suite_runner():
    return run_suite


@pytest.fixture(scope="session")
def cpu_extension():
    """The fused optimizers' C++/OpenMP extension (suite/optim/kernels/cpu.py), built or
    loaded from torch's extension cache once per session; skips with the reason where it
    cannot be built (no compiler) or is turned off (``OPTBENCH_NO_CPP=1``)."""
    from suite.optim.kernels import cpu

    if cpu.extension() is None:
        reason = cpu.build_info().get("error", "OPTBENCH_NO_CPP is set")
        pytest.skip(f"the CPU optimizer extension is not available: {reason}")
    return cpu.extension()
