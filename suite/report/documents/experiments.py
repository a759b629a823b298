"""Paper-style comparisons: the standard report plus a short Markdown verdict.

    python -m suite.report.documents.experiments <decoupled_wd|state_8bit|sgd_vs_adam> <runs>... --out DIR
        [--fresh <runs>...]

Each verdict (:mod:`suite.report.documents.papers`, one module per paper) says what the paper
found, what we measured (means, stds, seeds) and whether the two agree. Comparisons go through :mod:`suite.report.compute.claims`: paired by seed
on test error at the val-selected configurations, the family being *the comparisons of
one experiment* (Holm over them), effects with a bootstrap 95 % interval, and
"equivalent" only by TOST at a margin stated before the data (0.5 point of accuracy or
0.01 nats, :func:`suite.report.compute.verdicts.default_margin`), else "inconclusive" with the
seeds that would decide it. A grid's verdict is not drawn while a selected lr or wd sits
on an open edge of its grid (:mod:`suite.report.compute.grid_edges`): one line per edge
names the optimizer, the value, the edge and the grid to extend to. Like the rest of the
report it reads run records only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from suite.record import RecordError, atomic_write_text
from suite.report.compute.selection import at_fresh_seeds, select_on_val
from suite.report.documents.flatness import doubled_lines
from suite.report.documents.papers.decoupled_wd import decoupled_wd
from suite.report.documents.papers.sgd_vs_adam import sgd_vs_adam
from suite.report.documents.papers.state_8bit import state_8bit
from suite.report.documents.papers.text import BUDGET, not_scored
from suite.report.documents.standard import write_report
from suite.report.read.collect import collect, completed_runs

VERDICTS = {"decoupled_wd": decoupled_wd, "state_8bit": state_8bit, "sgd_vs_adam": sgd_vs_adam}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.report.documents.experiments")
    parser.add_argument("experiment", choices=sorted(VERDICTS))
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument(
        "--fresh",
        nargs="+",
        type=Path,
        default=[],
        help="runs at fresh seeds of the configurations chosen on <runs>: the verdict scores these",
    )
    parser.add_argument(
        "--double",
        nargs="+",
        type=Path,
        default=[],
        help="runs of chosen configurations at twice the steps: has the budget flattened?",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        runs = completed_runs(args.runs)
        fresh = completed_runs(args.fresh) if args.fresh else None
        choose = select_on_val if fresh is None else at_fresh_seeds(fresh)
        text = VERDICTS[args.experiment](runs, choose) + not_scored(
            collect([*args.runs, *args.fresh])  # the runs' problems: what could not be scored
        )
        if args.double:
            scored = runs if fresh is None else fresh
            text += BUDGET + "\n".join(doubled_lines(scored, completed_runs(args.double))) + "\n"
        write_report(
            [*args.runs, *args.fresh],
            args.out,
            f"optbench experiment: {args.experiment}",
            args.force,
            "python -m suite.report.documents.experiments "
            + " ".join(sys.argv[1:] if argv is None else argv),
        )
    except (RecordError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    atomic_write_text(args.out / "VERDICT.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
