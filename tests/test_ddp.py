"""Data parallel on CPU: torchrun with 2 gloo processes follows the one-process loss curve
on the same global batch, for every optimizer family (8-bit state included)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from suite import record
from tests.conftest import REPO, run_suite

ARGS = (
    "task.dim=1024",
    "logger=none",
    "progress=none",
    "steps=40",
    "log_every=5",
    "eval_every=20",
    "device=cpu",
    "threads=1",
)


def losses(run_dir):
    return [
        e["loss"] for e in record.read_jsonl(run_dir / "metrics.jsonl") if e["event"] == "train"
    ]


SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "task, optimizer",
    [
        ("toy", "adamw"),
        pytest.param("toy", "adamw8bit", marks=SLOW),  # 8-bit DDP: cnn_digits below (slow)
        pytest.param("toy", "sgd", marks=SLOW),
        pytest.param("toy", "adam", marks=SLOW),
        pytest.param("toy", "bnb_adamw8bit", marks=SLOW),
        pytest.param("toy", "torch_adamw", marks=SLOW),
        pytest.param("cnn_digits", "adamw8bit", marks=SLOW),
        pytest.param("vit_digits", "adamw", marks=SLOW),
        pytest.param("lm_shakespeare", "adamw", marks=SLOW),
    ],
)
def test_two_process_ddp_matches_one_process(tmp_path, task, optimizer):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    args = (*ARGS, f"task={task}", f"optimizer={optimizer}")
    if task != "toy":
        args = (
            *[a for a in args if not a.startswith("task.")],
            "steps=10",
            "log_every=2",
            "eval_every=0",
        )
    rel = 1e-4
    if task.startswith("vit"):
        args = (*args, "task.drop_path=0")  # per-sample drop masks differ with the batch split
    if task.startswith("cnn"):
        rel = 5e-3  # BatchNorm normalises with each rank's batch statistics (as in any DDP run)
    run_suite(*args, run_dir=single)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "suite.run",
        *args,
        f"hydra.run.dir={ddp}",
    ]
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    s1, s2 = record.read_summary(single), record.read_summary(ddp)
    assert s2["status"] == "ok" and s2["world_size"] == 2 and s1["world_size"] == 1
    assert s2["optimizer_state_bytes"] == s1["optimizer_state_bytes"]  # full state on each rank
    assert losses(ddp) == pytest.approx(losses(single), rel=rel)
    final_tol = 2e-3 if rel < 1e-3 else 3e-2  # BN running statistics come from rank 0's slice
    for key, value in s1["final"].items():
        assert s2["final"][key] == pytest.approx(value, rel=1e-3, abs=final_tol), key
