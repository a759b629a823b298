"""Fault campaign through the real entry point (``make reliability``), on the toy task.

Every case is a ``python -m suite.run`` subprocess, as a user would run it:

- SIGKILL at 7 points (after steps, mid-write of checkpoints, after the last step, a
  second kill during the resume, 8-bit state), then ``resume=true``: the summary
  (status, steps, final, best, final_train_loss, steps_to_target) and the logged
  steps must equal an uninterrupted run's, bit for bit;
- a NaN injected into the weights (``OPTBENCH_NAN_AT``): status ``diverged`` at that
  step, with the layer named; a sweep in which one run diverges goes on;
- a full disk (a 1 MiB tmpfs, where this process may mount one): earlier records
  intact, the run resumes after space is freed; a truncated and a bit-flipped
  checkpoint: refused, nothing changed; a corrupt dataset; a run folder under a file;
- hostile configs: each refused before work with one line, no record written.

Prints the table (fault/input, expected, observed, ok?) and the totals; exits 1 if
any case fails or any record was lost (a finished run folder whose summary.json or
metrics.jsonl later changed or disappeared, or a killed run's metrics that are no
longer a readable prefix of the uninterrupted run's).

    .venv/bin/python scripts/reliability.py [--jobs 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from suite import record

REPO = Path(__file__).resolve().parent.parent
FAST = ("task=toy", "logger=none", "progress=none", "threads=1")
KILL = (*FAST, "task.dim=1024", "steps=400", "eval_every=150", "checkpoint_every=100")
COMPARED = ("status", "steps", "final", "best", "final_train_loss", "steps_to_target")
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
KILL_POINTS = [  # (optimizer, kill points: the first run, then each resume)
    ("adamw", ["step:60"]),  # before any checkpoint: the resume starts over
    ("adamw", ["step:150"]),  # right after an eval, between checkpoints
    ("adamw", ["checkpoint:100"]),  # mid-write of the first checkpoint: only the .tmp exists
    ("adamw", ["checkpoint:200"]),  # mid-write of the second
    ("adamw", ["step:400"]),  # after the last step, before the final eval and summary
    ("adamw", ["step:150", "step:250"]),  # killed again while resuming
    ("adamw8bit", ["step:333"]),  # 8-bit state through a checkpoint
]
HOSTILE = [
    "optimizer.lr=nan",
    "optimizer.lr=inf",
    "optimizer.lr=-1",
    "optimizer.betas=[1.0,0.999]",
    "task.batch_size=0",
    "+optimizer.bogus=1",
    "optimizer=../../etc/passwd",
    "task=a/b",
    "task=../task/toy",
    "seed=-1",
    "seed=1.5",
    "steps=0",
    "steps=1.5",
    "log_every=1.5",
    "checkpoint_every=2.5",
    "resume=no",
    "device=tpu",
]


@dataclass
class Row:
    kind: str  # "fault" | "input"
    case: str
    expected: str
    observed: str
    ok: bool
    recovered: int = 0  # runs brought back to the uninterrupted result


class Campaign:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sealed: dict[Path, dict[str, str]] = {}  # finished run folder -> file digests
        self.lost: list[str] = []
        self.lock = threading.Lock()
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
        for key in ("OPTBENCH_KILL_AT", "OPTBENCH_NAN_AT", "WANDB_API_KEY"):
            self.env.pop(key, None)

    # --- running ---
    def suite(
        self,
        *overrides: str,
        run_dir: Path | None = None,
        env: dict | None = None,
        multirun: bool = False,
    ) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "suite.run", *(["-m"] if multirun else []), *overrides]
        if run_dir is not None:
            cmd.append(f"hydra.run.dir={run_dir}")
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            env={**self.env, **(env or {})},
        )
        proc.stderr = proc.stderr.replace(str(self.root), "<tmp>")  # short lines in the table
        return proc

    # --- the record ledger ---
    @staticmethod
    def digest(run_dir: Path) -> dict[str, str]:
        return {
            name: hashlib.sha256((run_dir / name).read_bytes()).hexdigest()
            for name in ("summary.json", "metrics.jsonl")
            if (run_dir / name).is_file()
        }

    def seal(self, run_dir: Path) -> None:
        """A finished record: from now on its summary and metrics must not change."""
        with self.lock:
            self.sealed[run_dir] = self.digest(run_dir)

    def lose(self, what: str) -> None:
        with self.lock:
            self.lost.append(what)

    def audit(self) -> None:
        for run_dir, before in self.sealed.items():
            if len(before) < 2 or self.digest(run_dir) != before:
                self.lose(f"{run_dir}: summary.json/metrics.jsonl changed or missing")


def comparable(run_dir: Path) -> dict:
    s = record.read_summary(run_dir)
    steps = [e["step"] for e in record.read_jsonl(run_dir / "metrics.jsonl")]
    return {**{k: s[k] for k in COMPARED}, "logged_steps": steps}


def brief(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def headline(stderr: str) -> str:
    """The line that says what went wrong: ``error: ...``, else an exception's last line."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("error: ", "In 'config': Could not find")):
            return line.removeprefix("error: ")
    errors = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    return (errors or lines or [""])[-1]


def differences(got: dict, want: dict) -> str:
    return ", ".join(k for k in want if got.get(k) != want[k]) or "none"


def refusal(
    proc: subprocess.CompletedProcess,
    run_dir: Path,
    exit_code: int | None = None,
    fresh: bool = True,
) -> tuple[str, bool]:
    """(observed, ok) for an input that must be refused before work with one line
    (and, in a fresh run folder, before any record file is written)."""
    lines = proc.stderr.strip().splitlines()
    if proc.returncode == 0:
        status = (
            record.read_summary(run_dir)["status"] if (run_dir / "summary.json").exists() else "?"
        )
        return f"NOT refused: ran, status {status}", False
    hydra_refusal = any(line.startswith("In 'config': Could not find") for line in lines)
    wrote = [
        n
        for n in ("summary.json", "metrics.jsonl", "checkpoint.pt")
        if (run_dir / n).exists() and (fresh or n == "summary.json")
    ]
    problems = []
    if "Traceback" in proc.stderr:
        problems.append("traceback")
    if not hydra_refusal and (len(lines) != 1 or not lines[0].startswith("error: ")):
        problems.append(f"{len(lines)} lines on stderr")
    if exit_code is not None and proc.returncode != exit_code:
        problems.append(f"exit {proc.returncode}, not {exit_code}")
    if wrote:
        problems.append(f"wrote {', '.join(wrote)}")
    observed = f"exit {proc.returncode}: {brief(headline(proc.stderr), 100)}"
    return observed + (f" [{'; '.join(problems)}]" if problems else ""), not problems


# --- the cases -------------------------------------------------------------------------


def baseline(c: Campaign, optimizer: str) -> Path:
    run_dir = c.root / f"straight_{optimizer}"
    proc = c.suite(*KILL, f"optimizer={optimizer}", run_dir=run_dir)
    if proc.returncode != 0:
        raise SystemExit(f"the uninterrupted {optimizer} run failed:\n{proc.stderr[-3000:]}")
    c.seal(run_dir)
    return run_dir


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
        if (run_dir / "summary.json").exists():
            problems.append("a killed run wrote summary.json")
        metrics = run_dir / "metrics.jsonl"
        try:
            steps = [e["step"] for e in record.read_jsonl(metrics)] if metrics.exists() else []
        except record.RecordError as e:
            steps = None
            c.lose(f"{run_dir}: metrics.jsonl unreadable after the kill ({e})")
        if steps is not None and steps != want["logged_steps"][: len(steps)]:
            c.lose(f"{run_dir}: metrics.jsonl after the kill is not a prefix of the straight run's")
    proc = c.suite(*KILL, f"optimizer={optimizer}", "resume=true", run_dir=run_dir)
    recovered = 0
    if proc.returncode != 0 or not (run_dir / "summary.json").exists():
        problems.append(f"resume failed (exit {proc.returncode}): {brief(proc.stderr[-300:], 60)}")
    else:
        c.seal(run_dir)
        diff = differences(comparable(run_dir), want)
        if diff == "none":
            recovered = 1
        else:
            problems.append(f"resumed run differs in: {diff}")
    where = " then ".join(p.replace(":", " ") for p in points)
    return Row(
        "fault",
        f"SIGKILL at {where} ({optimizer})",
        "killed; resume == uninterrupted",
        "; ".join(problems) or f"killed x{len(points)}; resumed, bit-identical",
        not problems,
        recovered,
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


def disk_full_case(c: Campaign, ref: Path) -> Row:
    expected = "no traceback; earlier records intact; resume after freeing space == uninterrupted"
    if os.geteuid() != 0:
        return Row(
            "fault", "disk full (1 MiB tmpfs)", expected, "skipped: mounting needs root", True
        )
    mnt = c.root / "disk"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        return Row(
            "fault",
            "disk full (1 MiB tmpfs)",
            expected,
            f"skipped: mount refused ({brief(proc.stderr, 40)})",
            True,
        )
    try:
        earlier = mnt / "earlier"
        shutil.copytree(ref, earlier)
        before = Campaign.digest(earlier)
        st = os.statvfs(mnt)
        filler = mnt / "filler"
        room = 120 * 1024  # the run's files and one 66 kB checkpoint, not a second
        filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize - room))
        run_dir = mnt / "full"
        full = c.suite(*KILL, "optimizer=adamw", run_dir=run_dir)
        problems = []
        if Campaign.digest(earlier) != before:
            c.lose(f"{earlier}: changed when the disk filled up")
        if "Traceback" in full.stderr:
            problems.append("traceback on stderr")
        said = brief(headline(full.stderr), 60)
        if (run_dir / "summary.json").exists():
            s = record.read_summary(run_dir)
            said = f"recorded {s['status']}: {brief(str(s['error']), 50)}"
        filler.unlink()
        resumed = c.suite(*KILL, "optimizer=adamw", "resume=true", run_dir=run_dir)
        recovered = 0
        if resumed.returncode == 0 and (run_dir / "summary.json").exists():
            diff = differences(comparable(run_dir), comparable(ref))
            recovered = int(diff == "none")
            if diff != "none":
                problems.append(f"resumed run differs in: {diff}")
        else:
            problems.append(f"resume failed: {brief(resumed.stdout + resumed.stderr, 60)}")
        if Campaign.digest(earlier) != before:
            c.lose(f"{earlier}: changed when the full run resumed")
        observed = f"exit {full.returncode} ({said}); " + (
            "; ".join(problems) or "resumed, bit-identical"
        )
        return Row("fault", "disk full (1 MiB tmpfs)", expected, observed, not problems, recovered)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


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
    before = {
        p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.suffix != ".log"
    }
    proc = c.suite(*KILL, "optimizer=adamw", "resume=true", run_dir=run_dir)
    observed, ok = refusal(proc, run_dir, exit_code=2, fresh=False)
    if proc.returncode == 0 and (run_dir / "summary.json").exists():
        diff = differences(comparable(run_dir), comparable(ref))
        observed += "; result " + ("== uninterrupted" if diff == "none" else f"differs in {diff}")
    after = {
        p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.suffix != ".log"
    }
    if after != before:
        observed, ok = observed + " [folder changed]", False
    recovered = 0
    if ok:  # the way out the message names: delete it and resume, which starts over
        ckpt.unlink()
        again = c.suite(*KILL, "optimizer=adamw", "resume=true", run_dir=run_dir)
        same = again.returncode == 0 and comparable(run_dir) == comparable(ref)
        recovered = int(same)
        observed += "; deleted + resumed: " + ("bit-identical" if same else "DIFFERENT")
        ok = same
    return Row(
        "fault",
        f"{damage.replace('_', ' ')} checkpoint.pt, resume",
        "refused (exit 2), folder unchanged",
        observed,
        ok,
        recovered,
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
    observed, ok = refusal(proc, run_dir, exit_code=2)
    named = (
        f"data_{damage}/tinyshakespeare/input.txt" in proc.stderr
        and SHAKESPEARE_SHA256 in proc.stderr
    )
    observed = (
        "names file + expected sha256; " if named else "[file or checksum not named] "
    ) + observed
    return Row(
        "input",
        f"{damage.replace('_', ' ')} tinyshakespeare/input.txt",
        "refused (exit 2), names file + checksum",
        observed,
        ok and named,
    )


def run_dir_case(c: Campaign) -> Row:
    blocker = c.root / "a_file"
    blocker.write_text("not a folder\n")
    proc = c.suite(*FAST, "steps=5", f"hydra.run.dir={blocker}/run")
    observed, ok = refusal(proc, blocker / "run")
    return Row(
        "input", "hydra.run.dir=<a file>/run", "refused with one line before training", observed, ok
    )


def hostile_case(c: Campaign, override: str) -> Row:
    run_dir = c.root / f"hostile_{hashlib.sha1(override.encode()).hexdigest()[:8]}"
    proc = c.suite(*FAST, "steps=5", override, run_dir=run_dir)
    observed, ok = refusal(proc, run_dir)
    return Row("input", override, "refused before work", observed, ok)


# --- the campaign ---------------------------------------------------------------------------


def attempt(job: tuple[str, Callable[[], Row]]) -> Row:
    """Run one case; a case that breaks is a failed row, not a lost table."""
    name, case = job
    try:
        return case()
    except Exception as e:
        return Row(
            "fault", name, "the case runs", f"campaign error: {type(e).__name__}: {e}", False
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--keep", type=Path, help="keep the run folders here (default: a temp dir)")
    args = parser.parse_args()
    start = time.perf_counter()
    root = args.keep or Path(tempfile.mkdtemp(prefix="optbench-reliability-"))
    root.mkdir(parents=True, exist_ok=True)
    c = Campaign(root.resolve())
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            optimizers = ("adamw", "adamw8bit")
            refs = dict(
                zip(optimizers, pool.map(lambda o: baseline(c, o), optimizers), strict=True)
            )
            jobs: list[tuple[str, Callable[[], Row]]] = [
                *[
                    (f"kill {p}", lambda o=o, p=p: kill_case(c, o, p, refs[o]))
                    for o, p in KILL_POINTS
                ],
                ("nan", lambda: nan_case(c)),
                ("sweep", lambda: sweep_case(c)),
                ("disk full", lambda: disk_full_case(c, refs["adamw"])),
                *[
                    (f"{d} checkpoint", lambda d=d: damaged_checkpoint_case(c, refs["adamw"], d))
                    for d in ("truncated", "bit_flipped")
                ],
                *[
                    (f"{d} dataset", lambda d=d: dataset_case(c, d))
                    for d in ("truncated", "wrong_checksum")
                ],
                ("run dir under a file", lambda: run_dir_case(c)),
                *[(h, lambda h=h: hostile_case(c, h)) for h in HOSTILE],
            ]
            rows = list(pool.map(attempt, jobs))
        c.audit()
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title="optbench reliability: faults and bad input through python -m suite.run")
    for col in ("fault / input", "expected", "observed", "ok?"):
        table.add_column(col, overflow="fold")
    for r in rows:
        ok = "[green]ok[/]" if r.ok else "[red]FAIL[/]"
        table.add_row(escape(r.case), escape(r.expected), escape(r.observed), ok)
    console.print(table)
    faults = [r for r in rows if r.kind == "fault" and not r.observed.startswith("skipped")]
    inputs = [r for r in rows if r.kind == "input"]
    failed = [r for r in rows if not r.ok]
    console.print(
        f"faults injected: {sum(r.case.count(' then ') + 1 for r in faults)}   "
        f"runs recovered: {sum(r.recovered for r in rows)}   "
        f"records lost: {len(c.lost)}   "
        f"bad inputs tried: {len(inputs)}, refused: {sum(r.ok for r in inputs)}   "
        f"failed cases: {len(failed)}   ({time.perf_counter() - start:.0f} s)"
    )
    for what in c.lost:
        console.print(f"[red]record lost[/]: {what}")
    return 1 if failed or c.lost else 0


if __name__ == "__main__":
    sys.exit(main())
