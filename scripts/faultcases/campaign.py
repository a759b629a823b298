"""Running the real entry point, the ledger of finished records, and what a refusal must be."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from suite import record

REPO = Path(__file__).resolve().parent.parent.parent
FAST = ("task=toy", "logger=none", "progress=none", "threads=1")
KILL = (*FAST, "task.dim=1024", "steps=400", "eval_every=150", "checkpoint_every=100")
COMPARED = ("status", "steps", "final", "best", "final_train_loss", "steps_to_target")
OUTCOMES = ("refused", "recovered", "held", "skipped", "failed")


@dataclass
class Row:
    kind: str  # "fault" | "input" | "security"
    case: str
    expected: str
    observed: str
    ok: bool
    outcome: str = ""  # refused | recovered (resumed == uninterrupted) | held | skipped
    faults: int = 1  # faults injected by this case (a random-kill row holds many)
    executed: bool = False  # a security payload ran (its marker file appeared)

    def __post_init__(self) -> None:
        if not self.ok:
            self.outcome = "failed"
        elif not self.outcome:
            self.outcome = "refused" if self.kind in ("input", "security") else "held"


def skipped(kind: str, case: str, expected: str, why: str) -> Row:
    return Row(kind, case, expected, f"skipped: {why}", True, "skipped", 0)


class Campaign:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sealed: dict[Path, dict[str, str]] = {}  # finished run folder -> file digests
        self.lost: list[str] = []
        self.lock = threading.Lock()
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"}
        for key in ("OPTBENCH_KILL_AT", "OPTBENCH_NAN_AT", "OPTBENCH_SIGNAL_AT", "WANDB_API_KEY"):
            self.env.pop(key, None)

    def command(self, *overrides: str, run_dir: Path | None = None, multirun: bool = False):
        cmd = [sys.executable, "-m", "suite.run", *(["-m"] if multirun else []), *overrides]
        return cmd + ([f"hydra.run.dir={run_dir}"] if run_dir is not None else [])

    def suite(
        self,
        *overrides: str,
        run_dir: Path | None = None,
        env: dict | None = None,
        multirun: bool = False,
    ) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            self.command(*overrides, run_dir=run_dir, multirun=multirun),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            env={**self.env, **(env or {})},
        )
        proc.stderr = proc.stderr.replace(str(self.root), "<tmp>")  # short lines in the table
        return proc

    # --- the record ledger: a finished record must never change afterwards ---
    @staticmethod
    def digest(run_dir: Path) -> dict[str, str]:
        """sha256 of every file below a run folder (.hydra/ included)."""
        return {
            str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*"))
            if p.is_file()
        }

    def seal(self, run_dir: Path) -> None:
        with self.lock:
            self.sealed[run_dir] = self.digest(run_dir)

    def lose(self, what: str) -> None:
        with self.lock:
            self.lost.append(what)

    def audit(self) -> None:
        for run_dir, before in self.sealed.items():
            if not {"summary.json", "metrics.jsonl"} <= before.keys():
                self.lose(f"{run_dir}: sealed without summary.json and metrics.jsonl")
            elif self.digest(run_dir) != before:
                self.lose(f"{run_dir}: a file of the finished record changed or disappeared")


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
        if line.startswith("error: "):
            return line.removeprefix("error: ")
    errors = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    return (errors or lines or [""])[-1]


def differences(got: dict, want: dict) -> str:
    return ", ".join(k for k in want if got.get(k) != want[k]) or "none"


def stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """stderr without torch's import-time deprecation warnings (W1201 ... _pytree.py)."""
    return [
        line
        for line in proc.stderr.strip().splitlines()
        if line.strip() and not re.match(r"^W\d{4} .*_pytree\.py", line)
    ]


def refusal(
    proc: subprocess.CompletedProcess,
    run_dir: Path,
    words: tuple[str, ...] = (),
    fresh: bool = True,
) -> tuple[str, bool]:
    """(observed, ok) for an input that must be refused before work: exit 2, one line
    ``error: ...`` naming ``words``, and (in a fresh run folder) no folder left behind."""
    lines = stderr_lines(proc)
    if proc.returncode == 0:
        status = (
            record.read_summary(run_dir)["status"] if (run_dir / "summary.json").exists() else "?"
        )
        return f"NOT refused: ran, status {status}", False
    problems = []
    if "Traceback" in proc.stderr:
        problems.append("traceback")
    if len(lines) != 1 or not lines[0].startswith("error: "):
        problems.append(f"{len(lines)} lines on stderr")
    if proc.returncode != 2:
        problems.append(f"exit {proc.returncode}, not 2")
    missing = [w for w in words if w not in proc.stderr]
    if missing:
        problems.append(f"does not name {', '.join(missing)}")
    if fresh and run_dir.exists():
        problems.append(f"left {'an empty' if not any(run_dir.iterdir()) else 'a'} run folder")
    observed = f"exit {proc.returncode}: {brief(headline(proc.stderr), 100)}"
    return observed + (f" [{'; '.join(problems)}]" if problems else ""), not problems
