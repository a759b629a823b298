"""Bad input and misused run folders: each refused before any work with one line naming
the bad value (exit 2, no folder left behind), and nothing already recorded changed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

from faultcases.campaign import (
    FAST,
    KILL,
    REPO,
    Campaign,
    Row,
    brief,
    comparable,
    refusal,
)

SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
HOSTILE = [  # (overrides, words the one-line refusal must hold)
    (("optimizer.lr=nan",), ("lr",)),
    (("optimizer.lr=inf",), ("lr",)),
    (("optimizer.lr=-1",), ("lr",)),
    (("optimizer.betas=[1.0,0.999]",), ("beta",)),
    (("optimizer.eps=0",), ("optimizer.eps", "NaN")),
    (("task.batch_size=0",), ("batch_size",)),
    (("+optimizer.bogus=1",), ("optimizer.bogus", "weight_decay")),
    (("+foo=1",), ("'foo'", "checkpoint_every")),
    (("bogus=1",), ("'bogus'", "checkpoint_every")),
    (("+schedule.warmup_step=5",), ("schedule.warmup_step", "warmup_steps")),
    (("+task.dimm=3",), ("task.dimm", "dim")),
    (("optimizer=nope",), ("unknown optimizer 'nope'", "adamw")),
    (("task=nope",), ("unknown task 'nope'", "toy")),
    (("optimizer=../../etc/passwd",), ("optimizer",)),
    (("task=a/b",), ("task",)),
    (("task=../task/toy",), ("task",)),
    (("seed=-1",), ("seed",)),
    (("seed=1.5",), ("seed",)),
    (("seed=99999999999999999999",), ("seed", "2^63")),
    (("steps=0",), ("steps",)),
    (("steps=1.5",), ("steps",)),
    (("log_every=1.5",), ("log_every",)),
    (("checkpoint_every=2.5",), ("checkpoint_every",)),
    (("resume=no",), ("resume",)),
    (("device=tpu",), ("device",)),
    (("threads=many",), ("threads", "'many'")),
    (("grad_clip=abc",), ("grad_clip", "'abc'")),
    (("schedule.min_lr_ratio=5",), ("schedule.min_lr_ratio", "[0, 1]")),
    (("optimizer=sgd", "optimizer.momentum=1.5"), ("optimizer.momentum", "[0, 1)")),
    (("optimizer=sgd", "optimizer.lr=1e308"), ("optimizer.lr", "float32")),
    (("optimizer.betas=[0.9,1e39]",), ("optimizer.betas[1]", "float32")),
    (("task=cnn_digits", "task.batch_size=1"), ("batch_size", ">= 2")),
    (("optimizer._target_=suite.optim.sgd.SGDD",), ("optimizer._target_", "SGDD")),
    (("~optimizer._partial_",), ("_partial_: true",)),
    (
        ("task=lm_shakespeare", "task.batch_size=100000", "steps=2"),
        ("needs at least", "GiB are free"),
    ),
]
RESUME_CHANGES = [  # a killed run resumed with a config that changes the numbers
    (("optimizer.lr=0.5",), ("optimizer.lr: recorded 0.001, now 0.5",)),
    (("steps=500",), ("steps: recorded 400, now 500",)),
    (("seed=1",), ("seed: recorded 0, now 1",)),
    (("optimizer=sgd",), ("optimizer._target_", "optimizer.momentum")),
]


def _name(overrides: tuple[str, ...]) -> str:
    return hashlib.sha1(" ".join(overrides).encode()).hexdigest()[:8]


def hostile_case(c: Campaign, overrides: tuple[str, ...], words: tuple[str, ...]) -> Row:
    parent = c.root / f"hostile_{_name(overrides)}"  # made by this run alone, if by any
    run_dir = parent / "run"
    proc = c.suite(*FAST, "steps=5", *overrides, run_dir=run_dir)
    observed, ok = refusal(proc, run_dir, words)
    if parent.exists() and not run_dir.exists():
        observed, ok = observed + " [left an empty parent folder]", False
    return Row("input", " ".join(overrides), "refused before work, names it", observed, ok)


def resume_change_case(c: Campaign, changed: tuple[str, ...], words: tuple[str, ...]) -> Row:
    run_dir = c.root / f"resume_change_{_name(changed)}"
    c.suite(*KILL, run_dir=run_dir, env={"OPTBENCH_KILL_AT": "step:150"})
    before = Campaign.digest(run_dir)
    keys = {o.split("=")[0] for o in changed}
    kept = [o for o in KILL if o.split("=")[0] not in keys]
    proc = c.suite(*kept, *changed, "resume=true", run_dir=run_dir)
    observed, ok = refusal(proc, run_dir, ("resume refused", *words), fresh=False)
    if Campaign.digest(run_dir) != before:
        c.lose(f"{run_dir}: a refused resume changed the killed run's record")
        observed, ok = observed + " [record changed]", False
    return Row(
        "input",
        f"resume=true {' '.join(changed)} (killed run)",
        "refused: names key, both values",
        observed,
        ok,
    )


def finished_folder_case(c: Campaign, ref: Path, resume: bool) -> Row:
    """A finished record reused (a second run into it, or a resume): nothing may change,
    Hydra's .hydra/ included."""
    before = Campaign.digest(ref)
    proc = c.suite(*KILL, "optimizer=adamw", *(("resume=true",) if resume else ()), run_dir=ref)
    changed = Campaign.digest(ref) != before
    if changed:
        c.lose(f"{ref}: a finished record changed when it was reused")
    if resume:
        ok = proc.returncode == 0 and "already finished" in proc.stdout and not changed
        observed = f"exit {proc.returncode}: {brief(proc.stdout.strip(), 70)}"
    else:
        observed, ok = refusal(proc, ref, ("already holds a record",), fresh=False)
        ok = ok and not changed
    return Row(
        "input",
        f"finished folder reused{' with resume=true' if resume else ''}",
        "nothing run, every file (.hydra/ too) unchanged",
        observed + (" [files changed]" if changed else "; every file unchanged"),
        ok,
    )


def running_folder_case(c: Campaign) -> Row:
    """A second run started into a folder a first run is writing: refused naming the holder."""
    run_dir = c.root / "shared_folder"
    first = subprocess.Popen(
        c.command(*FAST, "steps=100000", run_dir=run_dir),
        cwd=REPO,
        env=c.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "metrics.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = c.suite(*FAST, "steps=20", run_dir=run_dir)
        observed, ok = refusal(second, run_dir, (f"in use by pid {first.pid}",), fresh=False)
    finally:
        first.kill()
        first.wait()
    holder = json.loads((run_dir / "run.lock").read_text() or "{}").get("pid")
    ok = ok and holder == first.pid
    return Row(
        "input", "a second run into a running folder", "refused: names pid and host", observed, ok
    )


def damaged_checkpoint_case(c: Campaign, ref: Path, damage: str) -> Row:
    run_dir = c.root / f"ckpt_{damage}"
    c.suite(*KILL, "optimizer=adamw", run_dir=run_dir, env={"OPTBENCH_KILL_AT": "step:150"})
    ckpt = run_dir / "checkpoint.pt"  # holds step 100
    data = bytearray(ckpt.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    before = Campaign.digest(run_dir)
    proc = c.suite(*KILL, "optimizer=adamw", "resume=true", run_dir=run_dir)
    observed, ok = refusal(proc, run_dir, ("checkpoint.pt",), fresh=False)
    if Campaign.digest(run_dir) != before:
        observed, ok = observed + " [folder changed]", False
    outcome = ""
    if ok:  # the way out the message names: delete it and resume, which starts over
        ckpt.unlink()
        again = c.suite(*KILL, "optimizer=adamw", "resume=true", run_dir=run_dir)
        same = again.returncode == 0 and comparable(run_dir) == comparable(ref)
        observed += "; deleted + resumed: " + ("bit-identical" if same else "DIFFERENT")
        ok, outcome = same, "recovered" if same else ""
    return Row(
        "fault",
        f"{damage.replace('_', ' ')} checkpoint.pt, resume",
        "refused (exit 2), folder unchanged",
        observed,
        ok,
        outcome,
    )


def dataset_case(c: Campaign, damage: str) -> Row:
    data = c.root / f"data_{damage}"
    path = data / "tinyshakespeare" / "input.txt"
    path.parent.mkdir(parents=True)
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    if damage == "truncated":
        path.write_text(text[:30])
    else:  # the right size, the wrong bytes
        path.write_bytes((text * (1115394 // len(text) + 1)).encode()[:1115394])
    run_dir = c.root / f"run_data_{damage}"
    proc = c.suite(
        "task=lm_shakespeare",
        "logger=none",
        "progress=none",
        "steps=2",
        f"data.root={data}",
        run_dir=run_dir,
    )
    words = (f"data_{damage}/tinyshakespeare/input.txt", SHAKESPEARE_SHA256)
    observed, ok = refusal(proc, run_dir, words)
    return Row(
        "input",
        f"{damage.replace('_', ' ')} tinyshakespeare/input.txt",
        "refused (exit 2), names file + checksum",
        observed,
        ok,
    )


def run_dir_case(c: Campaign) -> Row:
    blocker = c.root / "a_file"
    blocker.write_text("not a folder\n")
    proc = c.suite(*FAST, "steps=5", f"hydra.run.dir={blocker}/run")
    observed, ok = refusal(proc, blocker / "run", ("not a folder",))
    return Row(
        "input", "hydra.run.dir=<a file>/run", "refused with one line before training", observed, ok
    )
