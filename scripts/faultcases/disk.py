"""A full disk (a 1 MiB tmpfs, where this process may mount one): at the first record
file, at a checkpoint, mid-run at a metrics line, and while resuming a killed run. Each
must say "no space left on device" with the path, leave no torn line, keep what it had
written whole (the killed run's checkpoint and metrics, which the failing resume could
have touched), and resume after space is freed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from faultcases.campaign import KILL, Campaign, Row, brief, comparable, differences, skipped
from suite import record
from suite.runner.preflight import check_checkpoint

EXPECTED = (
    "says no space left on device + path; nothing torn; resume after freeing == uninterrupted"
)
CASES = {  # name: (room left in bytes, extra overrides, killed first at)
    "at the first record file": (0, (), None),
    "at a checkpoint": (40 * 1024, (), None),
    "mid-run, at a metrics line": (24 * 1024, ("checkpoint_every=0", "log_every=1"), None),
    "while resuming a killed run": (8 * 1024, (), "step:150"),
}


@contextmanager
def tiny_disk(c: Campaign, name: str) -> Iterator[Path | str]:
    """A mounted 1 MiB tmpfs, or the reason there is none."""
    if os.geteuid() != 0:
        yield "mounting a tmpfs needs root"
        return
    mnt = c.root / f"disk_{name.replace(' ', '_').replace(',', '')}"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        yield f"mount refused ({brief(proc.stderr, 40)})"
        return
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _fill(disk: Path, room: int) -> Path:
    filler = disk / "filler"
    st = os.statvfs(disk)
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - room))
    return filler


def disk_full_case(c: Campaign, name: str, ref: Path) -> Row:
    room, extra, killed_at = CASES[name]
    case = f"disk full {name}"
    with tiny_disk(c, name) as disk:
        if isinstance(disk, str):
            return skipped("fault", case, EXPECTED, disk)
        run_dir = disk / "run"
        args = (*KILL, "optimizer=adamw", *extra)
        problems = []
        before: dict[str, str] = {}
        if killed_at:  # what the failing resume could touch: the kill's checkpoint, metrics
            c.suite(*args, run_dir=run_dir, env={"OPTBENCH_KILL_AT": killed_at})
            before = {
                n: Campaign.digest(run_dir).get(n, "") for n in ("checkpoint.pt", "metrics.jsonl")
            }
        filler = _fill(disk, room)
        full = c.suite(*args, *(("resume=true",) if killed_at else ()), run_dir=run_dir)
        said = full.stderr
        if (run_dir / "summary.json").exists():
            said += " " + str(record.read_summary(run_dir)["error"]).replace(str(c.root), "<tmp>")
        shown = str(run_dir).replace(str(c.root), "<tmp>")
        if full.returncode == 0:
            problems.append("the run did not fail")
        if "Traceback" in full.stderr:
            problems.append("traceback")
        if "no space left on device" not in said.lower() or shown not in said:
            problems.append(f"said: {brief(said, 70)}")
        metrics = run_dir / "metrics.jsonl"
        text = metrics.read_text() if metrics.exists() else ""
        if text and not text.endswith("\n"):
            c.lose(f"{run_dir}/metrics.jsonl: ends in a torn line after the disk filled")
        if killed_at:
            now = Campaign.digest(run_dir)
            if now.get("checkpoint.pt") != before["checkpoint.pt"]:
                c.lose(
                    f"{run_dir}/checkpoint.pt: the killed run's checkpoint changed on a full disk"
                )
            try:
                check_checkpoint(run_dir / "checkpoint.pt")
            except record.RecordError as e:
                c.lose(f"{run_dir}: {e}")
        filler.unlink()
        resumed = c.suite(*args, "resume=true", run_dir=run_dir)
        recovered = False
        if resumed.returncode == 0 and (run_dir / "summary.json").exists():
            diff = differences(comparable(run_dir), comparable(ref)) if not extra else "none"
            recovered = diff == "none" and record.read_summary(run_dir)["status"] == "ok"
            if not recovered:
                problems.append(f"resumed run differs in: {diff}")
        else:
            problems.append(f"resume failed: {brief(resumed.stdout + resumed.stderr, 60)}")
        observed = f"exit {full.returncode}: {brief(said.strip(), 70)}; " + (
            "; ".join(problems) or "resumed" + (", bit-identical" if not extra else ", ok")
        )
        return Row(
            "fault", case, EXPECTED, observed, not problems, "recovered" if recovered else ""
        )
