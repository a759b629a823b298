"""Fault campaign through the real entry point (``make reliability``), on the toy task.

Every case is a ``python -m suite.run`` subprocess, as a user would run it (the cases
live in scripts/faultcases/):

- kills: SIGKILL at the loop's points (after steps, mid-write of a checkpoint, after
  the last step, again during the resume, 8-bit state) and from a parent after a random
  delay, many trials; SIGTERM and SIGINT. Each run is resumed and must equal an
  uninterrupted run bit for bit (status, steps, final, best, losses, logged steps);
- a NaN in the weights (diverged at that step, layer named), a sweep that goes on past
  a diverged run;
- a full disk (a 1 MiB tmpfs; root only, else skipped) at the first file, a checkpoint,
  a metrics line and while resuming a killed run: the message says no space left on
  device with the path, nothing is torn, the killed run's checkpoint stays whole;
- bad input (every hostile value, unknown keys and names, too large a batch), a resume
  with a changed config, a finished folder reused, a second run into a running folder,
  damaged checkpoints and datasets: refused with one line (exit 2), nothing changed;
- security (faultcases/security.py): payloads in files someone else made (nested
  ``_target_``, a pickled checkpoint, a YAML python tag, a study.json's extra, a study.db's
  stored overrides): each refused in one line, payloads executed must be 0.

Totals: cases tried, bad inputs refused, runs recovered, records lost, cases skipped.
A record is lost when a finished folder's files later change (every file, .hydra/
included), a killed run's metrics are no longer a readable prefix of the uninterrupted
run's, or a checkpoint a failure could have touched is damaged. Exits 1 on any failed
case or lost record.

    .venv/bin/python scripts/reliability.py [--jobs 2] [--trials 6] [--seed 0] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Read the records with the suite of this checkout (the one `python -m suite.run` runs from
# the repository root), not whichever one the environment's editable install points at.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from faultcases import disk, inputs, kills, security  # noqa: E402
from faultcases.campaign import KILL, Campaign, Row  # noqa: E402


def attempt(job: tuple[str, Callable[[], Row]]) -> Row:
    """Run one case; a case that breaks is a failed row, not a lost table."""
    name, case = job
    try:
        return case()
    except Exception as e:
        return Row(
            "fault", name, "the case runs", f"campaign error: {type(e).__name__}: {e}", False
        )


def jobs(
    c: Campaign, refs: dict[str, Path], trials: int, seed: int
) -> list[tuple[str, Callable[[], Row]]]:
    adamw = refs["adamw"]
    return [
        (
            f"random kills x{trials}",
            lambda: kills.random_kill_case(c, refs["random"], trials, seed),
        ),
        *[
            (f"kill {p}", lambda o=o, p=p: kills.kill_case(c, o, p, refs[o]))
            for o, p in kills.KILL_POINTS
        ],
        *[(s, lambda s=s: kills.signal_case(c, s, adamw)) for s in ("SIGTERM", "SIGINT")],
        ("nan", lambda: kills.nan_case(c)),
        ("sweep", lambda: kills.sweep_case(c)),
        *[(f"disk {n}", lambda n=n: disk.disk_full_case(c, n, adamw)) for n in disk.CASES],
        *[
            (f"{d} checkpoint", lambda d=d: inputs.damaged_checkpoint_case(c, adamw, d))
            for d in ("truncated", "bit_flipped")
        ],
        *[
            (f"{d} dataset", lambda d=d: inputs.dataset_case(c, d))
            for d in ("truncated", "wrong_checksum")
        ],
        ("run dir under a file", lambda: inputs.run_dir_case(c)),
        ("running folder", lambda: inputs.running_folder_case(c)),
        *[
            (
                f"finished folder {r}",
                lambda r=r: inputs.finished_folder_case(c, refs["adamw8bit"], r),
            )
            for r in (False, True)
        ],
        *[
            (" ".join(ch), lambda ch=ch, w=w: inputs.resume_change_case(c, ch, w))
            for ch, w in inputs.RESUME_CHANGES
        ],
        *[(" ".join(h), lambda h=h, w=w: inputs.hostile_case(c, h, w)) for h, w in inputs.HOSTILE],
        *[
            (f"security {n}", lambda n=n, o=o: security.override_case(c, n, o))
            for n, o in security.OVERRIDES
        ],
        ("security checkpoint", lambda: security.checkpoint_case(c)),
        ("security yaml", lambda: security.yaml_tag_case(c)),
        ("security compare", lambda: security.compare_case(c)),
        ("security study.db", lambda: security.study_db_case(c, adamw)),
    ]


def progress(start: float, line: str) -> None:
    """One line per finished case on stderr, so a long run shows where it is."""
    print(f"[reliability +{time.perf_counter() - start:.0f}s] {line}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--trials", type=int, default=6, help="random SIGKILL trials (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random kill delays")
    parser.add_argument("--keep", type=Path, help="keep the run folders here (default: a temp dir)")
    args = parser.parse_args()
    start = time.perf_counter()
    root = args.keep or Path(tempfile.mkdtemp(prefix="optbench-reliability-"))
    root.mkdir(parents=True, exist_ok=True)
    c = Campaign(root.resolve())
    try:
        with ThreadPoolExecutor(args.jobs) as pool:
            bases = {
                "adamw": (*KILL, "optimizer=adamw"),
                "adamw8bit": (*KILL, "optimizer=adamw8bit"),
                "random": kills.RANDOM,
            }
            progress(
                start, f"reference runs of {', '.join(bases)} (the kills are compared with them)"
            )
            refs = dict(
                zip(bases, pool.map(lambda n: kills.baseline(c, n, *bases[n]), bases), strict=True)
            )
            todo = list(jobs(c, refs, args.trials, args.seed))
            finished = itertools.count(1)

            def tracked(job):
                row = attempt(job)
                progress(start, f"{next(finished)}/{len(todo)} {row.outcome}: {row.case}")
                return row

            rows = list(pool.map(tracked, todo))
        c.audit()
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    console = Console(width=None if sys.stdout.isatty() else 170)
    table = Table(title="optbench reliability: faults and bad input through python -m suite.run")
    for col in ("fault / input", "expected", "observed", "outcome"):
        table.add_column(col, overflow="fold")
    colour = {"failed": "red", "skipped": "yellow"}
    for r in rows:
        outcome = f"[{colour.get(r.outcome, 'green')}]{r.outcome}[/]"
        table.add_row(escape(r.case), escape(r.expected), escape(r.observed), outcome)
    console.print(table)
    tried = [r for r in rows if r.outcome != "skipped"]
    inputs_tried = [r for r in tried if r.kind == "input"]
    failed = [r for r in rows if r.outcome == "failed"]
    console.print(
        f"tried: {len(tried)} cases ({sum(r.faults for r in tried if r.kind == 'fault')} faults "
        f"injected, {len(inputs_tried)} bad inputs)   "
        f"refused: {sum(r.outcome == 'refused' for r in inputs_tried)} of {len(inputs_tried)}   "
        f"recovered: {sum(r.outcome == 'recovered' for r in rows)} runs   "
        f"lost: {len(c.lost)} records   "
        f"skipped: {len(rows) - len(tried)}   "
        f"failed: {len(failed)}   ({time.perf_counter() - start:.0f} s)"
    )
    payloads = [r for r in rows if r.kind == "security" and r.outcome != "skipped"]
    executed = sum(r.executed for r in payloads)
    console.print(
        f"security: {len(payloads)} payloads tried (nested _target_, pickled checkpoint, "
        f"YAML python tag, study.json extra, study.db overrides)   "
        f"refused: {sum(r.outcome == 'refused' for r in payloads)}   "
        f"payloads executed: {executed} (must be 0)"
    )
    for what in c.lost:
        console.print(f"[red]record lost[/]: {what}")
    return 1 if failed or c.lost or executed else 0


if __name__ == "__main__":
    sys.exit(main())
