"""The real entry point end to end: records, W&B offline files, resume after SIGKILL,
divergence, bad input refused before work, concurrent runs, a submitit_local sweep."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from suite import record
from suite.runner.lock import RunLock
from tests import wandb_files
from tests.conftest import REPO, run_suite

FAST = ("task=toy", "logger=none", "progress=plain")


def summary(run_dir: Path) -> dict:
    return record.read_summary(run_dir)


def test_toy_run_leaves_a_valid_record_and_offline_wandb_run(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_suite(
        "task=toy",
        "optimizer=adamw",
        "logger=wandb",
        "logger.mode=offline",
        "steps=60",
        "eval_every=20",
        run_dir=run_dir,
    )
    assert "[ok]" in proc.stdout
    for name in record.RECORD_FILES:
        assert (run_dir / name).is_file(), name
    s = summary(run_dir)
    assert (
        s["status"] == "ok"
        and s["steps"] == 60
        and s["optimizer"] == "adamw"
        and s["impl"] == "inhouse"
    )
    assert s["optimizer_state_bytes"] > 0 and s["n_params"] > 0 and s["median_step_time_s"] > 0
    assert s["final"] and {k.split("/")[0] for k in s["final"]} == {"train", "val", "test"}
    events = record.read_jsonl(run_dir / "metrics.jsonl")
    assert [e["step"] for e in events if e["event"] == "eval"] == [20, 40, 60]
    assert all(
        {"loss", "lr", "grad_norm", "step_time_s"} <= e.keys()
        for e in events
        if e["event"] == "train"
    )
    env = json.loads((run_dir / "env.json").read_text())
    assert env["packages"]["torch"] and env["command"]
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["optimizer"]["lr"] == 1e-3
    # a real offline W&B run: its .wandb file holds the logged history
    assert s["wandb"]["mode"] == "offline"
    offline = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and offline[0].stat().st_size > 0


def test_divergence_stops_at_once_with_a_diagnosis(tmp_path):
    run_dir = tmp_path / "run"
    run_suite(*FAST, "optimizer=sgd", "optimizer.lr=1e6", "steps=200", run_dir=run_dir)
    s = summary(run_dir)
    assert s["status"] == "diverged"
    assert s["diverged_at_step"] is not None and s["steps"] == s["diverged_at_step"] < 200
    assert "lower lr" in s["diagnosis"]


@pytest.mark.parametrize(
    "bad, message",
    [
        (("optimizer=nope",), "unknown optimizer 'nope'; valid: adam, "),
        (("task=nope",), "unknown task 'nope'; valid: cnn_cifar10, "),
        (("+foo=1",), "unknown key 'foo'; valid top-level keys: amp, "),
        (("+schedule.warmup_step=5",), "schedule.warmup_step'; valid schedule keys: "),
        (("threads=many",), "invalid threads: 'many'"),
        (("grad_clip=abc",), "invalid grad_clip: 'abc'"),
        (("optimizer.eps=0",), "optimizer.eps: 0"),
        (("seed=99999999999999999999",), "invalid seed"),
        (("schedule.min_lr_ratio=5",), "schedule.min_lr_ratio"),
        pytest.param(
            ("task=lm_shakespeare", "task.batch_size=100000"),
            "task.batch_size=100000 needs at least",
            marks=pytest.mark.slow,  # builds the LM task (about 10 s)
        ),
        (("optimizer.lr=-1",), "lr"),
        (("optimizer.betas=[1.0,0.999]",), "beta"),
        (("optimizer.lr=nan",), "lr"),
        (("+optimizer.bogus=1",), "bogus"),
        (("bogus=1",), "bogus"),
        (("amp=fp8",), "amp"),
        (("logger.mode=loud",), "logger.mode"),
        (("task.batch_size=0",), "batch_size"),
        (("device=tpu",), "device"),
    ],
)
def test_bad_input_is_refused_before_work(tmp_path, bad, message):
    run_dir = tmp_path / "run"
    proc = run_suite(*FAST, *bad, run_dir=run_dir, check=False, warm=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("W1201 ")]
    assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], errors
    assert not run_dir.exists()  # a refused run leaves no (empty) folder behind


def test_existing_record_is_never_overwritten(tmp_path):
    run_dir = tmp_path / "run"
    run_suite(*FAST, "steps=20", run_dir=run_dir)
    before = (run_dir / "summary.json").read_bytes()
    proc = run_suite(*FAST, "steps=20", run_dir=run_dir, check=False)
    assert proc.returncode != 0 and "already holds a record" in proc.stderr
    assert (run_dir / "summary.json").read_bytes() == before


@pytest.mark.slow
def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    run_suite(*FAST, "steps=20", run_dir=run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    proc = run_suite(*FAST, "steps=20", "resume=true", run_dir=run_dir)
    assert "already finished" in proc.stdout
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def _comparable(s: dict) -> dict:
    return {
        k: s[k]
        for k in (
            "status",
            "steps",
            "final",
            "best",
            "final_train_loss",
            "steps_to_target",
            "optimizer_state_bytes",
            "n_params",
        )
    }


RESUME_ARGS = (
    "task=toy",
    "task.dim=1024",
    "logger=none",
    "progress=none",
    "steps=400",
    "eval_every=150",
    "checkpoint_every=100",
)
_straight: dict[str, dict] = {}


def straight_summary(optimizer: str, tmp_path_factory) -> dict:
    if optimizer not in _straight:
        run_dir = tmp_path_factory.mktemp("straight") / optimizer
        run_suite(*RESUME_ARGS, f"optimizer={optimizer}", run_dir=run_dir)
        _straight[optimizer] = {
            "summary": summary(run_dir),
            "steps": [e["step"] for e in record.read_jsonl(run_dir / "metrics.jsonl")],
        }
    return _straight[optimizer]


@pytest.mark.parametrize(
    "optimizer, kill_at",
    [
        pytest.param("adamw", "step:150", marks=pytest.mark.slow),  # between checkpoints
        ("adamw", "checkpoint:200"),  # mid-write of the second checkpoint
        pytest.param("adamw", "step:60", marks=pytest.mark.slow),  # before any checkpoint
        ("adamw8bit", "step:333"),  # 8-bit state through a checkpoint
        # mid-write of the first checkpoint: the same path as checkpoint:200 (slow set only,
        # to keep the default run under 10 minutes on 2 cores)
        pytest.param("adamw8bit", "checkpoint:100", marks=pytest.mark.slow),
    ],
)
def test_resume_after_sigkill_is_bit_identical(tmp_path, tmp_path_factory, optimizer, kill_at):
    reference = straight_summary(optimizer, tmp_path_factory)
    killed = tmp_path / "killed"
    proc = run_suite(
        *RESUME_ARGS,
        f"optimizer={optimizer}",
        run_dir=killed,
        check=False,
        env={"OPTBENCH_KILL_AT": kill_at},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (killed / "summary.json").exists()
    run_suite(*RESUME_ARGS, f"optimizer={optimizer}", "resume=true", run_dir=killed)
    assert _comparable(summary(killed)) == _comparable(reference["summary"])
    assert [e["step"] for e in record.read_jsonl(killed / "metrics.jsonl")] == reference["steps"]


def test_concurrent_runs_write_separate_complete_records(tmp_path):
    root = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "suite.run",
        *FAST,
        "steps=50",
        f"hydra.run.dir={root}/${{now:%H-%M-%S-%f}}_s${{seed}}",
    ]
    procs = [
        subprocess.Popen(
            [*cmd, f"seed={i}"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for i in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read().decode()[-2000:]
    runs = record.find_runs(root)
    assert len(runs) == 2
    assert sorted(summary(r)["seed"] for r in runs) == [0, 1]
    for r in runs:
        assert len(record.read_jsonl(r / "metrics.jsonl")) > 0


@pytest.mark.slow  # 17 s; the joblib launcher's sweep stays in the default set (test_threads)
def test_submitit_local_sweep_2x2(tmp_path):
    sweep = tmp_path / "sweep"
    run_suite(
        *FAST,
        "steps=30",
        "optimizer=adamw,sgd",
        "seed=0,1",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        f"hydra.sweep.dir={sweep}",
        multirun=True,
        timeout=400,
    )
    runs = record.find_runs(sweep)
    got = sorted((summary(r)["optimizer"], summary(r)["seed"]) for r in runs)
    assert got == [("adamw", 0), ("adamw", 1), ("sgd", 0), ("sgd", 1)]
    assert all(summary(r)["status"] == "ok" for r in runs)
    assert len({r.name for r in runs}) == 4


@pytest.mark.slow
def test_wandb_online_without_network_falls_back_to_offline(tmp_path):
    run_dir = tmp_path / "run"
    # a real online init against a W&B server that is not there (a closed local port)
    env = {"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_MODE": ""}
    proc = run_suite(
        "task=toy",
        "progress=none",
        "steps=20",
        "logger=wandb",
        "logger.mode=online",
        run_dir=run_dir,
        env=env,
        timeout=240,
    )
    s = summary(run_dir)
    assert s["status"] == "ok"
    assert s["wandb"]["mode"] == "offline" and "online logging failed" in s["wandb"]["note"]
    assert "logged offline" in proc.stdout
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))


@pytest.mark.slow
def test_an_unreachable_wandb_server_is_found_once_per_sweep_and_said_once(tmp_path):
    sweep = tmp_path / "sweep"
    env = {"WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_MODE": ""}
    start = time.monotonic()
    proc = run_suite(
        "task=toy",
        "progress=none",
        "steps=10",
        "logger=wandb",
        "logger.mode=online",
        "seed=0,1,2",
        f"hydra.sweep.dir={sweep}",
        multirun=True,
        env=env,
        timeout=240,
    )
    assert proc.stdout.count("warning: W&B server") == 1, proc.stdout
    runs = record.find_runs(sweep)
    assert len(runs) == 3
    for r in runs:
        s = summary(r)
        assert s["wandb"]["mode"] == "offline" and "unreachable" in s["wandb"]["note"]
    assert time.monotonic() - start < 120  # no 60 s wait per run


def files_state(run_dir: Path) -> dict[str, tuple[str, int]]:
    """(sha256, mtime_ns) of every file below ``run_dir``, .hydra/ included."""
    return {
        str(p.relative_to(run_dir)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


SMALL_CKPT = (*FAST, "progress=none", "threads=1", "steps=60", "checkpoint_every=20")


@pytest.fixture
def killed_small(tmp_path) -> Path:
    run_dir = tmp_path / "killed"
    proc = run_suite(*SMALL_CKPT, run_dir=run_dir, check=False, env={"OPTBENCH_KILL_AT": "step:30"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    return run_dir


@pytest.mark.slow
def test_resume_with_a_changed_config_is_refused_and_changes_nothing(killed_small):
    before = files_state(killed_small)
    for changed, named in [
        (("optimizer.lr=0.5", "steps=80", "seed=1"), ("optimizer.lr", "steps", "seed")),
        (("optimizer=sgd",), ("optimizer._target_", "optimizer.momentum")),
    ]:
        overrides = [
            o for o in SMALL_CKPT if o.split("=")[0] not in {c.split("=")[0] for c in changed}
        ]
        proc = run_suite(*overrides, *changed, "resume=true", run_dir=killed_small, check=False)
        assert proc.returncode == 2, proc.stderr[-2000:]
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: resume refused"), lines
        for key in named:
            assert f"{key}:" in lines[0], (key, lines[0])
        assert "recorded 0.001, now 0.5" in lines[0] or "optimizer.lr" not in named
        assert files_state(killed_small) == before
    # keys that do not change the numbers may differ: the run resumes and finishes
    run_suite(
        *FAST,
        "steps=60",
        "checkpoint_every=30",
        "progress=plain",
        "threads=2",
        "resume=true",
        run_dir=killed_small,
    )
    assert summary(killed_small)["status"] == "ok"
    recorded = yaml.safe_load((killed_small / "config.yaml").read_text())
    assert recorded["checkpoint_every"] == 20 and recorded["threads"] == 1  # what was checked


@pytest.mark.slow
def test_a_finished_run_folder_is_never_modified(tmp_path):
    run_dir = tmp_path / "run"
    run_suite(*FAST, "steps=20", run_dir=run_dir)
    before = files_state(run_dir)
    assert ".hydra/overrides.yaml" in before and "run.log" not in before  # no empty run.log
    refused = run_suite(*FAST, "steps=20", "seed=3", run_dir=run_dir, check=False)
    assert refused.returncode == 2 and "already holds a record" in refused.stderr
    assert files_state(run_dir) == before
    run_suite(*FAST, "steps=20", "resume=true", run_dir=run_dir)
    assert files_state(run_dir) == before


def test_run_lock_names_its_holder(tmp_path):
    held = RunLock(tmp_path).acquire()
    with pytest.raises(
        record.RecordError, match=rf"in use by pid {os.getpid()} on {socket.gethostname()}"
    ):
        RunLock(tmp_path).acquire()
    held.release()
    RunLock(tmp_path).acquire().release()  # released: free again


def test_a_second_run_into_a_running_folder_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "suite.run",
        *FAST,
        "progress=none",
        "threads=1",
        "steps=100000",
        f"hydra.run.dir={run_dir}",
    ]
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "metrics.jsonl").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.2)
        second = run_suite(*FAST, "steps=20", run_dir=run_dir, check=False)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"in use by pid {first.pid}" in lines[0], lines
    finally:
        first.kill()
        first.wait()
    assert all(record.read_jsonl(run_dir / "metrics.jsonl"))  # only the first run's events


@pytest.mark.parametrize("signame", ["SIGTERM", pytest.param("SIGINT", marks=pytest.mark.slow)])
def test_a_signal_records_interrupted_and_the_run_resumes_bit_identical(
    tmp_path, tmp_path_factory, signame
):
    reference = straight_summary("adamw", tmp_path_factory)
    run_dir = tmp_path / "run"
    env = {"OPTBENCH_SIGNAL_AT": f"{signame}:150"}
    proc = run_suite(*RESUME_ARGS, "optimizer=adamw", run_dir=run_dir, check=False, env=env)
    assert proc.returncode == 128 + getattr(signal, signame), proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"interrupted by {signame} at step 150" in lines[0], lines
    s = summary(run_dir)
    assert (s["status"], s["steps"], s["signal"]) == ("interrupted", 150, signame)
    assert "resume=true" in lines[0]
    run_suite(*RESUME_ARGS, "optimizer=adamw", "resume=true", run_dir=run_dir)
    assert _comparable(summary(run_dir)) == _comparable(reference["summary"])
    assert [e["step"] for e in record.read_jsonl(run_dir / "metrics.jsonl")] == reference["steps"]


@pytest.mark.slow
def test_a_preempted_submitit_job_requeues_and_resumes_by_itself(tmp_path, tmp_path_factory):
    """submitit_local delivers the preemption signal (SIGUSR2) as Slurm would; the job
    checkpoints, records interrupted, submitit requeues it, and it finishes as if never
    stopped (about 30 s)."""
    reference = straight_summary("adamw", tmp_path_factory)
    sweep = tmp_path / "sweep"
    run_suite(
        *RESUME_ARGS,
        "optimizer=adamw",
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=5",
        f"hydra.sweep.dir={sweep}",
        multirun=True,
        timeout=400,
        env={"OPTBENCH_SIGNAL_AT": "SIGUSR2:150"},
    )
    (run_dir,) = record.find_runs(sweep)
    logs = "".join(p.read_text() for p in sweep.rglob("*_log.err"))
    assert "interrupted by SIGUSR2 at step 150" in logs and "requeued by submitit" in logs
    assert _comparable(summary(run_dir)) == _comparable(reference["summary"])
    assert [e["step"] for e in record.read_jsonl(run_dir / "metrics.jsonl")] == reference["steps"]


@pytest.mark.slow
def test_a_killed_and_resumed_run_is_one_wandb_run_with_its_whole_history(tmp_path):
    run_dir = tmp_path / "run"
    args = (*RESUME_ARGS, "logger=wandb", "logger.mode=offline")
    proc = run_suite(*args, run_dir=run_dir, check=False, env={"OPTBENCH_KILL_AT": "step:250"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run_suite(*args, "resume=true", run_dir=run_dir)
    files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2  # the killed run's and the resumed run's
    s = summary(run_dir)
    # one W&B run: both folders carry its id, and so does every file that got a run record
    # (the killed one may be a bare 7-byte header: wandb-core had not flushed when killed)
    assert {f.parent.name.rsplit("-", 1)[-1] for f in files} == {s["wandb"]["id"]}
    assert {wandb_files.run_id(f) for f in files} - {None} == {s["wandb"]["id"]}
    logged = sorted({e["step"] for e in record.read_jsonl(run_dir / "metrics.jsonl")})
    assert sorted(set(wandb_files.history_steps(files[-1]))) == logged  # the whole history
