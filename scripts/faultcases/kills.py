"""Processes that stop: SIGKILL at the loop's points and from a parent at random moments,
SIGTERM/SIGINT, a NaN in the weights, a sweep with a diverging run. Every killed run
is resumed and must end bit-identical to the uninterrupted one."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

from faultcases.campaign import FAST, KILL, REPO, Campaign, Row, brief, comparable, differences
from suite import record

KILL_POINTS = [  # (optimizer, kill points: the first run, then each resume)
    ("adamw", ["step:60"]),  # before any checkpoint: the resume starts over
    ("adamw", ["step:150"]),  # right after an eval, between checkpoints
    ("adamw", ["checkpoint:100"]),  # mid-write of the first checkpoint: only the .tmp exists
    ("adamw", ["checkpoint:200"]),  # mid-write of the second
    ("adamw", ["step:400"]),  # after the last step, before the final eval and summary
    ("adamw", ["step:150", "step:250"]),  # killed again while resuming
    ("adamw8bit", ["step:333"]),  # 8-bit state through a checkpoint
]
# Random kills hit writes often: a checkpoint every 20 steps and a metrics line every step.
RANDOM = (*KILL, "checkpoint_every=20", "log_every=1", "steps=600")


def baseline(c: Campaign, name: str, *overrides: str) -> Path:
    run_dir = c.root / f"straight_{name}"
    proc = c.suite(*overrides, run_dir=run_dir)
    if proc.returncode != 0:
        raise SystemExit(f"the uninterrupted {name} run failed:\n{proc.stderr[-3000:]}")
    c.seal(run_dir)
    return run_dir


def _after_kill(c: Campaign, run_dir: Path, want: dict) -> list[str]:
    """What a kill must leave: no summary, a metrics.jsonl that is a prefix of the
    uninterrupted run's (a torn last line is allowed: the reader and resume drop it)."""
    problems = []
    if (run_dir / "summary.json").exists():
        problems.append("a killed run wrote summary.json")
    metrics = run_dir / "metrics.jsonl"
    try:
        steps = [e["step"] for e in record.read_jsonl(metrics)] if metrics.exists() else []
    except record.RecordError as e:
        c.lose(f"{run_dir}: metrics.jsonl unreadable after the kill ({e})")
        return problems
    if steps != want["logged_steps"][: len(steps)]:
        c.lose(f"{run_dir}: metrics.jsonl after the kill is not a prefix of the straight run's")
    return problems


def _resume(c: Campaign, run_dir: Path, want: dict, *overrides: str) -> tuple[list[str], bool]:
    proc = c.suite(*overrides, "resume=true", run_dir=run_dir)
    if proc.returncode != 0 or not (run_dir / "summary.json").exists():
        return [f"resume failed (exit {proc.returncode}): {brief(proc.stderr[-300:], 60)}"], False
    c.seal(run_dir)
    diff = differences(comparable(run_dir), want)
    return ([] if diff == "none" else [f"resumed run differs in: {diff}"]), diff == "none"


def kill_case(c: Campaign, optimizer: str, points: list[str], ref: Path) -> Row:
    run_dir = c.root / f"kill_{optimizer}_{'_'.join(p.replace(':', '') for p in points)}"
    want = comparable(ref)
    problems, resume = [], ()
    for point in points:  # the first run, then resumes that are killed again
        proc = c.suite(
            *KILL,
            f"optimizer={optimizer}",
            *resume,
            run_dir=run_dir,
            env={"OPTBENCH_KILL_AT": point},
        )
        resume = ("resume=true",)
        if proc.returncode != -signal.SIGKILL:
            problems.append(f"not killed at {point} (exit {proc.returncode})")
        problems += _after_kill(c, run_dir, want)
    more, same = _resume(c, run_dir, want, *KILL, f"optimizer={optimizer}")
    problems += more
    where = " then ".join(p.replace(":", " ") for p in points)
    return Row(
        "fault",
        f"SIGKILL at {where} ({optimizer})",
        "killed; resume == uninterrupted",
        "; ".join(problems) or f"killed x{len(points)}; resumed, bit-identical",
        not problems,
        "recovered" if same and not problems else "",
        len(points),
    )


def random_kill_case(c: Campaign, ref: Path, trials: int, seed: int) -> Row:
    """A parent SIGKILLs the run after a random delay once training has started (the
    delay uniform over the uninterrupted run's training time), ``trials`` times, each
    into its own folder, then resumes it; also counts kills that caught a write."""
    rng = random.Random(seed)
    want = comparable(ref)
    train_s = max(0.2, record.read_summary(ref)["wall_seconds"])
    problems, recovered, mid_write, finished = [], 0, 0, 0
    for trial in range(trials):
        run_dir = c.root / f"random_kill_{trial}"
        cmd = c.command(*RANDOM, run_dir=run_dir)
        child = subprocess.Popen(
            cmd, cwd=REPO, env=c.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while not (run_dir / "metrics.jsonl").exists() and child.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0, train_s))
        child.send_signal(signal.SIGKILL)
        if child.wait() != -signal.SIGKILL:
            finished += 1  # it ended before the kill landed: still checked below
            c.seal(run_dir)
            continue
        text = (
            (run_dir / "metrics.jsonl").read_text() if (run_dir / "metrics.jsonl").exists() else ""
        )
        mid_write += (run_dir / "checkpoint.tmp").exists() or (
            bool(text) and not text.endswith("\n")
        )
        problems += [f"trial {trial}: {p}" for p in _after_kill(c, run_dir, want)]
        more, same = _resume(c, run_dir, want, *RANDOM)
        problems += [f"trial {trial}: {p}" for p in more]
        recovered += same
    killed = trials - finished
    return Row(
        "fault",
        f"SIGKILL from the parent at random moments x{trials} (seed {seed})",
        "every killed run resumes == uninterrupted",
        "; ".join(problems[:3])
        or f"{killed} killed ({mid_write} mid-write), {recovered} resumed bit-identical"
        + (f"; {finished} finished first" if finished else ""),
        not problems and recovered == killed,
        "recovered" if not problems and recovered == killed else "",
        killed,
    )


def signal_case(c: Campaign, signame: str, ref: Path) -> Row:
    run_dir = c.root / f"signal_{signame}"
    want = comparable(ref)
    proc = c.suite(
        *KILL, "optimizer=adamw", run_dir=run_dir, env={"OPTBENCH_SIGNAL_AT": f"{signame}:150"}
    )
    problems = []
    code = 128 + getattr(signal, signame)
    lines = proc.stderr.strip().splitlines()
    if proc.returncode != code:
        problems.append(f"exit {proc.returncode}, not {code}")
    if len(lines) != 1 or f"interrupted by {signame} at step 150" not in lines[0]:
        problems.append(f"stderr: {brief(proc.stderr, 80)}")
    s = record.read_summary(run_dir) if (run_dir / "summary.json").exists() else {}
    if (s.get("status"), s.get("steps")) != ("interrupted", 150):
        problems.append(f"recorded {s.get('status')} at {s.get('steps')}")
    more, same = _resume(c, run_dir, want, *KILL, "optimizer=adamw")
    problems += more
    return Row(
        "fault",
        f"{signame} after step 150",
        f"interrupted at 150, exit {code}, one line; resume == uninterrupted",
        "; ".join(problems) or f"exit {code}, recorded interrupted at 150; resumed, bit-identical",
        not problems,
        "recovered" if same and not problems else "",
    )


def nan_case(c: Campaign) -> Row:
    run_dir = c.root / "nan"
    proc = c.suite(*FAST, "steps=30", run_dir=run_dir, env={"OPTBENCH_NAN_AT": "7:weight"})
    if proc.returncode != 0 or not (run_dir / "summary.json").exists():
        observed, ok = f"exit {proc.returncode}: {brief(proc.stderr[-300:], 60)}", False
    else:
        c.seal(run_dir)
        s = record.read_summary(run_dir)
        layer = s.get("diverged_layer", "(not recorded)")
        observed = f"{s['status']} at step {s['diverged_at_step']}, layer {layer}"
        ok = (s["status"], s["diverged_at_step"], s["steps"], layer) == ("diverged", 7, 7, "Linear")
    return Row(
        "fault", "NaN in weights at step 7", "diverged at step 7, layer Linear", observed, ok
    )


def sweep_case(c: Campaign) -> Row:
    sweep = c.root / "sweep"
    proc = c.suite(
        *FAST,
        "optimizer=sgd",
        "optimizer.lr=1e-3,1e6",
        "steps=30",
        f"hydra.sweep.dir={sweep}",
        multirun=True,
    )
    runs = record.find_runs(sweep) if sweep.is_dir() else []
    got = []
    for r in runs:
        if (r / "summary.json").exists():
            c.seal(r)
            s = record.read_summary(r)
            got.append((s["hparams"]["lr"], s["status"]))
    ok = proc.returncode == 0 and sorted(got) == [(1e-3, "ok"), (1e6, "diverged")]
    observed = f"exit {proc.returncode}; " + ", ".join(f"lr={lr:g} {st}" for lr, st in sorted(got))
    return Row(
        "fault", "sweep lr=1e-3,1e6 (sgd)", "exit 0; lr=0.001 ok, lr=1e+06 diverged", observed, ok
    )
