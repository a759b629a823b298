"""The val-chosen configuration of a grid, as the Hydra overrides that rerun it at fresh seeds.

    python -m suite.report.documents.chosen <grid runs>...   ->   optimizer.lr=0.125

The grid's runs (one task and optimizer) are collected from their records, the configuration
with the lowest mean val error is chosen (:func:`select_on_val`), and the hyperparameters the
grid varied are printed as ``optimizer.<name>=<value>``, one Hydra override per value. A
value read from a record becomes a command-line argument, so only finite numbers are
printed (``repr``: the shortest text that reads back as the same float), under names of
letters, digits, ``_`` and ``.``; anything else is refused in one line, as is a folder
holding more than one task or optimizer.
"""

from __future__ import annotations

import argparse
import math
import numbers
import re
import sys
from pathlib import Path

import pandas as pd

from suite.record import RecordError
from suite.report.compute.selection import hp_columns, select_on_val
from suite.report.read.collect import completed_runs
from suite.report.read.rows import HP

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def chosen_overrides(runs: pd.DataFrame) -> list[str]:
    """``optimizer.<hp>=<value>`` for each hyperparameter the grid ``runs`` varied, at its
    val-chosen configuration."""
    for column in ("task", "optimizer"):
        if runs[column].nunique() != 1:
            raise RecordError(
                f"a grid is one task and optimizer; these runs hold {column}s "
                f"{sorted(set(runs[column]))}"
            )
    chosen = select_on_val(runs)
    overrides = []
    for column in hp_columns(runs):
        name, value = column[len(HP) :], chosen[column].iloc[0]
        if not NAME.fullmatch(name):
            raise RecordError(f"{name!r} is not a hyperparameter name")
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
        ):
            raise RecordError(f"{name}={value!r} is not a finite number")
        overrides.append(f"optimizer.{name}={float(value)!r}")
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.report.documents.chosen")
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        print(" ".join(chosen_overrides(completed_runs(args.runs))))
    except RecordError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
