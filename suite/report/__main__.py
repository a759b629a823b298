"""``python -m suite.report RUNS [RUNS ...] --out DIR [--title T] [--force]``

Reads run records, writes ``report.md`` (also printed), a CSV and a LaTeX file per
table and PNG plots under ``DIR/plots``. Refuses to overwrite an existing report
without ``--force``; a bad runs path is a one-line error. The report itself is
:func:`suite.report.documents.standard.write_report`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from suite.record import RecordError
from suite.report.documents.standard import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m suite.report", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument(
        "runs", nargs="+", type=Path, help="folders of run records (searched recursively)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for report.md, CSV, LaTeX, plots/"
    )
    parser.add_argument("--title", default="optbench report")
    parser.add_argument(
        "--force", action="store_true", help="overwrite an existing report in --out"
    )
    args = parser.parse_args(argv)
    cmd = "python -m suite.report " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        markdown = write_report(args.runs, args.out, args.title, args.force, cmd)
    except (RecordError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if hasattr(sys.stdout, "reconfigure"):  # LC_ALL=C: an ASCII terminal still gets the report
        sys.stdout.reconfigure(errors="backslashreplace")
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
