"""Faults and bad input through the real entry point (task=toy, seconds each):
NaN injection, divergence inside a sweep, an uncreatable run folder, a full disk,
a corrupt dataset, hostile configs, torn checkpoints. SIGKILL + resume identity
lives in test_run.py; `make reliability` runs the whole campaign as a table.

Some checks need a line the lead adds to suite/train.py, suite/run.py or
conf/config.yaml; until it is there they are expected failures (the reason says
which line), and they become ordinary tests once it is.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import torch
from torch import nn

from suite import record
from suite.runner import faults
from suite.runner.diagnose import first_nonfinite
from suite.runner.preflight import check_checkpoint
from tests.conftest import REPO, run_suite

FAST = ("task=toy", "logger=none", "progress=none")
# 40 steps, an eval every 20, a checkpoint every 10; dim 1024 makes a 66 kB checkpoint
CKPT = (*FAST, "task.dim=1024", "steps=40", "eval_every=20", "checkpoint_every=10", "log_every=5")
COMPARED = ("status", "steps", "final", "best", "final_train_loss", "steps_to_target")


def _source(path: str) -> str:
    return (REPO / path).read_text()


NAN_WIRED = "maybe_poison(" in _source("suite/train.py")
CONFIG_WIRED = "schema.check(" in _source("suite/run.py")
CKPT_WIRED = "check_checkpoint(" in _source("suite/run.py")
RUNDIR_WIRED = "RunDirCheck" in _source("suite/conf/config.yaml")
OSERROR_WIRED = "except OSError" in _source("suite/run.py")


def needs(wired: bool, what: str):
    return pytest.mark.xfail(not wired, reason=f"needs {what}", strict=False)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The refusal: non-zero exit, no traceback, exactly one line on stderr."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    return lines[0]


def no_record(run_dir: Path) -> None:
    for name in ("summary.json", "metrics.jsonl", "checkpoint.pt"):
        assert not (run_dir / name).exists(), name


def digest(run_dir: Path) -> dict[str, str]:
    """sha256 of every file in a run folder (Hydra's own .hydra/ and log excluded)."""
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and ".hydra" not in p.parts and p.suffix != ".log"
    }


def comparable(run_dir: Path) -> dict:
    s = record.read_summary(run_dir)
    steps = [e["step"] for e in record.read_jsonl(run_dir / "metrics.jsonl")]
    return {**{k: s[k] for k in COMPARED}, "metric_steps": steps}


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """CKPT run straight through: the reference for every resume here."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    run_suite(*CKPT, run_dir=run_dir)
    return run_dir


@pytest.fixture(scope="module")
def killed(tmp_path_factory) -> Path:
    """CKPT run SIGKILLed after step 25: checkpoint.pt holds step 20."""
    run_dir = tmp_path_factory.mktemp("killed") / "run"
    proc = run_suite(*CKPT, run_dir=run_dir, check=False, env={"OPTBENCH_KILL_AT": "step:25"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    return run_dir


# --- first_nonfinite, in process ---------------------------------------------------


class _Lossy:
    """The bit of the Task interface first_nonfinite uses."""

    def loss(self, model, batch):
        return model(batch).sum()


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.pos = nn.Parameter(torch.zeros(8))  # used directly in forward, like pos_embed
        self.blocks = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.blocks(self.embed(x) + self.pos))


def test_first_nonfinite_names_the_layer_then_parameters_then_grads():
    torch.manual_seed(0)
    net, x = _Net(), torch.randn(3, 4)
    assert first_nonfinite(net, _Lossy(), x) is None
    with torch.no_grad():
        net.blocks[2].weight[0, 0] = float("inf")
    assert first_nonfinite(net, _Lossy(), x) == "blocks.2"  # not "blocks" or "head"
    net = _Net()
    with torch.no_grad():
        net.pos[3] = float("nan")  # no module outputs it: blocks.0 sees NaN coming in
    assert first_nonfinite(net, _Lossy(), x) == "pos"
    net = _Net()
    net.head.weight.grad = torch.full_like(net.head.weight, float("nan"))
    assert first_nonfinite(net, _Lossy(), x) == "head.weight.grad"
    root = nn.Linear(4, 2)  # the toy task's model: the root module has no name
    with torch.no_grad():
        root.weight.fill_(float("nan"))
    assert first_nonfinite(root, _Lossy(), x) == "Linear"
    assert first_nonfinite(root, _Lossy(), "not a batch") is None  # never raises
    assert not any(m._forward_hooks for m in net.modules())  # hooks removed


def test_maybe_poison_fills_matching_parameters_at_its_step_only(monkeypatch):
    net = _Net()
    monkeypatch.setattr(faults, "NAN_AT", (3, "blocks.0"))
    faults.maybe_poison(net, 2)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    faults.maybe_poison(net, 3)
    bad = sorted(n for n, p in net.named_parameters() if not torch.isfinite(p).all())
    assert bad == ["blocks.0.bias", "blocks.0.weight"]
    monkeypatch.setattr(faults, "NAN_AT", (0, "nope"))
    with pytest.raises(ValueError, match="no parameter name contains 'nope'"):
        faults.maybe_poison(net, 0)
    with pytest.raises(ValueError, match="OPTBENCH_NAN_AT"):
        faults.parse_nan_at("seven:weight")
    assert faults.parse_nan_at("7:") == (7, "") and faults.parse_nan_at("") is None


# --- (a) NaN injection end to end ------------------------------------------------------


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("nan") / "run"
    run_suite(*FAST, "steps=30", run_dir=run_dir, env={"OPTBENCH_NAN_AT": "7:weight"})
    return run_dir


@needs(NAN_WIRED, "train.py wiring: faults.maybe_poison(model, step) at the top of the loop")
def test_injected_nan_diverges_at_that_step(nan_run):
    s = record.read_summary(nan_run)
    assert s["status"] == "diverged" and s["diverged_at_step"] == 7 and s["steps"] == 7
    assert s["diagnosis"] and s["final"] == {}
    events = record.read_jsonl(nan_run / "metrics.jsonl")
    assert events and max(e["step"] for e in events) <= 7


@needs(NAN_WIRED, "train.py wiring: faults.maybe_poison(model, step) at the top of the loop")
def test_injected_nan_names_the_layer(nan_run):
    s = record.read_summary(nan_run)
    assert s["status"] == "diverged"
    if "diverged_layer" not in s:
        pytest.xfail("needs train.py wiring: diverged_layer = first_nonfinite(...)")
    assert s["diverged_layer"] == "Linear"  # toy's model is one nn.Linear: the root module


# --- (b) a sweep in which one run diverges ----------------------------------------------


def test_sweep_goes_on_past_a_diverged_run(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_suite(
        *FAST,
        "optimizer=sgd",
        "optimizer.lr=1e-3,1e6",
        "steps=30",
        f"hydra.sweep.dir={sweep}",
        multirun=True,
    )
    runs = record.find_runs(sweep)
    got = sorted(
        (record.read_summary(r)["hparams"]["lr"], record.read_summary(r)["status"]) for r in runs
    )
    assert got == [(1e-3, "ok"), (1e6, "diverged")], proc.stdout[-2000:]
    ok = next(r for r in runs if record.read_summary(r)["status"] == "ok")
    assert record.read_summary(ok)["steps"] == 30 and record.read_summary(ok)["final"]


# --- (c) nowhere to write ---------------------------------------------------------------


@needs(
    RUNDIR_WIRED,
    "suite/conf/config.yaml: hydra.callbacks.run_dir_check (suite.runner.preflight.RunDirCheck)",
)
@pytest.mark.parametrize("multirun", [False, True], ids=["run", "sweep"])
def test_run_folder_under_a_file_is_refused_before_training(tmp_path, multirun):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder\n")
    where = f"hydra.sweep.dir={blocker}/sweep" if multirun else f"hydra.run.dir={blocker}/run"
    proc = run_suite(*FAST, "steps=5", where, multirun=multirun, check=False)
    line = one_line_error(proc)
    assert str(blocker) in line and "not a folder" in line
    assert blocker.read_text() == "not a folder\n"


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs, mounted only where this process may mount (root); else skip."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.slow
def test_full_disk_keeps_earlier_records_and_the_run_resumes(tmp_path, tiny_disk, straight):
    earlier = tiny_disk / "earlier"
    shutil.copytree(straight, earlier)  # a finished record on the same disk
    before = digest(earlier)
    # leave ~120 kB: room for the run's files and its first checkpoint (66 kB), not a second
    st = os.statvfs(tiny_disk)
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 120 * 1024))
    run_dir = tiny_disk / "full"
    proc = run_suite(*CKPT, run_dir=run_dir, check=False)

    assert digest(earlier) == before  # the earlier record is untouched
    assert not (run_dir / "summary.json").exists() or (
        record.read_summary(run_dir)["status"] == "failed"
    )
    events = record.read_jsonl(
        run_dir / "metrics.jsonl"
    )  # readable, a prefix of the straight run's
    straight_steps = comparable(straight)["metric_steps"]
    assert [e["step"] for e in events] == straight_steps[: len(events)]
    check_checkpoint(run_dir / "checkpoint.pt")  # the last good checkpoint is whole
    clean = "Traceback" not in proc.stderr

    filler.unlink()
    run_suite(*CKPT, "resume=true", run_dir=run_dir)
    assert comparable(run_dir) == comparable(straight)
    assert digest(earlier) == before
    if not clean and not OSERROR_WIRED:
        pytest.xfail("needs run.py: a one-line error when the record cannot be written")
    assert clean, proc.stderr[-3000:]
    assert not (run_dir / "checkpoint.tmp").exists()  # the torn temporary was removed


def _fill(disk: Path, room: int) -> Path:
    filler = disk / "filler"
    st = os.statvfs(disk)
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - room))
    return filler


def _said(proc: subprocess.CompletedProcess, run_dir: Path) -> str:
    """What the run said about the failure: its one stderr line, or its recorded error."""
    said = proc.stderr.strip()
    if (run_dir / "summary.json").is_file():
        said += " " + str(record.read_summary(run_dir)["error"])
    return said


@pytest.mark.parametrize(
    "where, room, overrides",
    [
        pytest.param("start", 0, (), marks=pytest.mark.slow),  # nothing fits: the first file
        ("checkpoint", 40 * 1024, ()),  # the files fit, the 66 kB checkpoint does not
        pytest.param(  # mid-run, at a metrics line
            "metrics", 24 * 1024, ("checkpoint_every=0", "log_every=1"), marks=pytest.mark.slow
        ),
    ],
)
def test_full_disk_says_no_space_with_the_path_and_leaves_no_torn_line(
    tiny_disk, where, room, overrides
):
    filler = _fill(tiny_disk, room)
    run_dir = tiny_disk / "run"
    proc = run_suite(*CKPT, *overrides, run_dir=run_dir, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    said = _said(proc, run_dir)
    assert "no space left on device" in said.lower() and str(run_dir) in said, said
    assert "enforce fail" not in said
    metrics = run_dir / "metrics.jsonl"
    if metrics.exists():
        text = metrics.read_text()
        assert not text or text.endswith("\n"), "metrics.jsonl ends in a torn line"
    filler.unlink()
    run_suite(*CKPT, *overrides, "resume=true", run_dir=run_dir)
    assert record.read_summary(run_dir)["status"] == "ok"


@pytest.mark.slow
def test_a_torn_last_metrics_line_is_dropped_on_resume(tmp_path, killed, straight):
    run_dir = tmp_path / "run"
    shutil.copytree(killed, run_dir)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"event": "train", "step": 30, "lo')  # what a kill mid-write leaves
    run_suite(*CKPT, "resume=true", run_dir=run_dir)
    assert (run_dir / "metrics.jsonl").read_text().endswith("}\n")
    assert comparable(run_dir) == comparable(straight)


def _as_nobody() -> list[str]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another account")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.mark.slow
def test_records_are_readable_by_another_account_and_a_report_of_none_fails(straight):
    nobody = _as_nobody()
    shared = Path(tempfile.mkdtemp(prefix="optbench-shared-"))
    try:
        shared.chmod(0o777)
        run_dir = shared / "run"
        run_suite(*FAST, "steps=10", run_dir=run_dir)
        for name in ("config.yaml", "env.json", "metrics.jsonl", "summary.json"):
            assert (run_dir / name).stat().st_mode & 0o777 == record.FILE_MODE, name
        report = [*nobody, sys.executable, "-m", "suite.report", str(shared)]
        ok = subprocess.run(
            [*report, "--out", str(shared / "a")], cwd=REPO, capture_output=True, text=True
        )
        assert ok.returncode == 0 and "unreadable" not in ok.stdout, ok.stdout[-2000:] + ok.stderr
        for p in run_dir.iterdir():  # what mkstemp used to leave: owner-only records
            if p.is_file():
                p.chmod(0o600)
        none = subprocess.run(
            [*report, "--out", str(shared / "b")], cwd=REPO, capture_output=True, text=True
        )
        assert none.returncode != 0 and "can be read" in none.stderr, none.stdout[-1000:]
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# --- (d) corrupt dataset ------------------------------------------------------------------

SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


@pytest.mark.parametrize("damage", ["truncated", "wrong_checksum"])
def test_corrupt_dataset_is_refused_naming_file_and_checksum(tmp_path, damage):
    path = tmp_path / "data" / "tinyshakespeare" / "input.txt"
    path.parent.mkdir(parents=True)
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    if damage == "truncated":
        path.write_text(text[:30])
    else:  # the right size, the wrong bytes
        path.write_bytes((text * (1115394 // len(text) + 1)).encode()[:1115394])
    run_dir = tmp_path / "run"
    proc = run_suite(
        "task=lm_shakespeare",
        "logger=none",
        "progress=none",
        "steps=2",
        f"data.root={tmp_path / 'data'}",
        run_dir=run_dir,
        check=False,
    )
    line = one_line_error(proc)
    assert proc.returncode == 2
    assert str(path) in line and SHAKESPEARE_SHA256 in line and "checksum" in line
    no_record(run_dir)


# --- (e) hostile configs --------------------------------------------------------------------
# lr=nan, betas=[1.0,...], batch_size=0, optimizer=nope, ... are in test_run.py already.

HOSTILE = [
    # (overrides, word the refusal must contain, refused today?)
    (("optimizer=../../etc/passwd",), "unknown optimizer '../../etc/passwd'; valid: adam", True),
    (("task=a/b",), "unknown task 'a/b'; valid: cnn_cifar10", True),
    (("task=../task/toy",), "task", False),  # Hydra loads conf/task/../task/toy.yaml
    (("steps=0",), "steps", True),
    (("steps=1.5",), "steps", False),  # int(1.5): 1 step, silently
    (("seed=-1",), "seed", False),  # -1 is not "random" here; torch and numpy disagree on it
    (("seed=1.5",), "seed", False),  # int(1.5): seed 1, recorded as 1
    (("log_every=1.5",), "log_every", False),
    (("checkpoint_every=2.5",), "checkpoint_every", False),
    (("resume=no",), "resume", False),  # bool("no") is True
    (("optimizer.lr=inf",), "lr", True),
]


@pytest.mark.parametrize(
    "bad, word",
    [
        pytest.param(
            bad,
            word,
            id=" ".join(bad),
            marks=()
            if today
            else needs(CONFIG_WIRED, "run.py setup(): schema.check(cfg, task, optimizer)"),
        )
        for bad, word, today in HOSTILE
    ],
)
def test_hostile_config_is_refused_before_work(tmp_path, bad, word):
    run_dir = tmp_path / "run"
    proc = run_suite(*FAST, "steps=5", *bad, run_dir=run_dir, check=False, warm=True)
    assert proc.returncode == 2 and word in proc.stderr, proc.stderr[-2000:]
    one_line_error(proc)
    assert not run_dir.exists()  # refused before Hydra made the folder, or removed again


# --- (f) torn checkpoints ------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # torch.load reads this without complaint
    path.write_bytes(bytes(data))


@needs(CKPT_WIRED, "run.py run(): preflight.check_checkpoint(run_dir / 'checkpoint.pt') on resume")
@pytest.mark.parametrize(
    "damage",
    [_truncate, pytest.param(_flip, marks=pytest.mark.slow)],
    ids=["truncated", "bit_flip"],
)
def test_damaged_checkpoint_is_never_loaded(tmp_path, killed, straight, damage):
    run_dir = tmp_path / "run"
    shutil.copytree(killed, run_dir)
    damage(run_dir / "checkpoint.pt")
    before = digest(run_dir)
    proc = run_suite(*CKPT, "resume=true", run_dir=run_dir, check=False)
    line = one_line_error(proc)
    assert proc.returncode == 2 and str(run_dir / "checkpoint.pt") in line
    assert digest(run_dir) == before  # nothing read as valid, nothing rewritten
    # the way out the message names: delete it, resume starts over and ends as the straight run
    (run_dir / "checkpoint.pt").unlink()
    run_suite(*CKPT, "resume=true", run_dir=run_dir)
    assert comparable(run_dir) == comparable(straight)


@pytest.mark.slow
def test_half_written_checkpoint_alone_is_ignored(tmp_path, straight):
    run_dir = tmp_path / "run"
    # killed mid-write of the first checkpoint: only the temporary file is on disk
    proc = run_suite(*CKPT, run_dir=run_dir, check=False, env={"OPTBENCH_KILL_AT": "checkpoint:10"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (run_dir / "checkpoint.pt").exists()
    tmps = [p for p in run_dir.iterdir() if p.name.startswith("checkpoint")]
    assert tmps, "expected the half-written temporary checkpoint"
    for p in tmps:
        _truncate(p)
    (run_dir / "checkpoint.pt.tmp").write_bytes(os.urandom(1000))
    run_suite(*CKPT, "resume=true", run_dir=run_dir)
    assert comparable(run_dir) == comparable(straight)


def test_check_checkpoint_accepts_a_good_one_and_names_the_damage(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.randn(5000)}, "track": {"step": 3}}, good)
    check_checkpoint(good)
    check_checkpoint(tmp_path / "absent.pt")  # nothing to resume from: not an error
    for damage, words in ((_flip, "CRC mismatch"), (_truncate, "truncated")):
        bad = tmp_path / f"{uuid.uuid4().hex}.pt"
        shutil.copy(good, bad)
        damage(bad)
        with pytest.raises(record.RecordError, match=words):
            check_checkpoint(bad)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(record.RecordError, match="truncated"):
        check_checkpoint(empty)
