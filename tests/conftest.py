"""Shared test setup: the real offline datasets in ../shared/data when present,
W&B offline, a fixed small thread count so the suite behaves on 2 cores."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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
    warm: bool = False,
) -> subprocess.CompletedProcess:
    """Run the real entry point ``python -m suite.run`` in a subprocess; ``warm``: forked
    from the warm fork server (suite.tune.warm; the same run, without the interpreter's
    start and imports: for the many runs refused in preflight)."""
    cmd = [sys.executable, "-m", "suite.run"]
    if multirun:
        cmd.append("-m")
    cmd += list(overrides)
    if run_dir is not None:
        cmd.append(f"hydra.run.dir={run_dir}")
    if warm and not multirun:
        proc = _run_warm(cmd[3:], {**os.environ, **(env or {})})
    else:
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


def _run_warm(args: list[str], env: dict) -> subprocess.CompletedProcess:
    from suite.tune import warm

    with tempfile.TemporaryDirectory() as tmp:
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        code = warm.run(args, out, err=err, cwd=REPO, env=env)
        text = {p: p.read_text() if p.exists() else "" for p in (out, err)}
    return subprocess.CompletedProcess(args, code, text[out], text[err])


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


TOY_TIER = dict(out="", reference="adamw", studies=3, trials_per_study=1, sampler="sobol",
                study_seed_base=100, rerun_seeds=[1, 2, 3],
                target_seeds=[1001, 1002, 1003, 1004, 1005], evals=2,
                run_overrides=["threads=1", "logger=none", "progress=none"],
                optimizers=["adamw", "sgd"],
                workloads={"toy": {"kind": "toy", "steps": 20,
                                   "budget_waiver": "20 steps: a test, not a benchmark"}})  # fmt: skip


@pytest.fixture(scope="session")
def toy_tier(tmp_path_factory):
    """A real campaign on the toy task, run once per test session: ``(root, protocol)``.
    Read it, never change it (copy it first)."""
    from suite.tune.campaign import campaign
    from suite.tune.protocol import Protocol

    root = tmp_path_factory.mktemp("toy-tier")
    raw = {**TOY_TIER, "out": str(root)}
    p = Protocol.from_mapping("toy-tier", raw)
    p.check()
    assert campaign(p, jobs=2) == 0
    return root, raw
