"""optbench from Python (notebooks): benchmark your own optimizer class.

    import optbench
    res = optbench.run(MyOpt, {"lr": 1.0}, task="toy", out="runs/mine", steps=200)
    res = optbench.compare(MyOpt, space={"lr": {"type": "log", "low": 0.01, "high": 100}},
                           out="cmp", baselines="results/baselines")
    res.path, res.verdict

A thin layer over :mod:`suite.own` (the entry, checked against the class) and the suite's
commands; the class must be importable by name from a module (not defined in ``__main__``
or a notebook cell), since every run is a fresh ``python -m suite.run`` process.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["Result", "compare", "run"]


class Result(NamedTuple):
    path: Path  # the run folder (run) or the comparison folder (compare)
    verdict: Any  # run: the summary's status; compare: the candidate's pairwise rows


def _entry(optimizer, hparams, space, out: Path, name: str | None):
    from suite import own

    if isinstance(optimizer, type) and optimizer.__module__ == "__main__":
        raise ValueError(
            f"invalid optimizer {optimizer.__qualname__}: defined in __main__; put the class "
            "in a module (a .py file next to the notebook) and import it from there"
        )
    return own.from_target(optimizer, hparams, out, name=name, space=space)


def run(
    optimizer: type | str,
    hparams: dict | None = None,
    *,
    task: str = "toy",
    out: str | Path,
    steps: int | None = None,
    overrides: list[str] = (),
    name: str | None = None,
) -> Result:
    """One run of ``optimizer`` on ``task``; its record in ``out``."""
    from suite.record import read_summary

    out = Path(out)
    entry = _entry(optimizer, hparams, None, out.parent / f"{out.name}.entry", name)
    cmd = [sys.executable, "-m", "suite.run", f"task={task}", f"optimizer={entry.name}"]
    cmd += [entry.searchpath_override, f"hydra.run.dir={out}", "logger=none", "progress=none"]
    cmd += [f"steps={steps}"] if steps else []
    done = subprocess.run([*cmd, *overrides])
    if not (out / "summary.json").is_file():
        raise RuntimeError(f"the run ended (exit {done.returncode}) without a record in {out}")
    return Result(out, read_summary(out)["status"])


def compare(
    optimizer: type | str,
    space: dict | None = None,
    *,
    out: str | Path,
    hparams: dict | None = None,
    baselines: str | Path = "results/baselines",
    name: str | None = None,
) -> Result:
    """``optimizer`` tuned over ``space`` with the baselines' budget; the leaderboard in ``out``."""
    from suite.tune import compare as cmp

    out = Path(out)
    entry = _entry(optimizer, hparams, space, out / "entry", name)
    argv = ["--optimizer", entry.name, "--out", str(out), "--baselines", str(baselines)]
    code = cmp.main([*argv, "--config-dir", str(entry.config_dir)])
    if code != 0:
        raise RuntimeError(f"optbench compare failed (exit {code}); see the lines above")
    pairs = out / "pairwise.csv"
    rows = list(csv.DictReader(pairs.open())) if pairs.is_file() else []
    return Result(out, [r for r in rows if r.get("candidate") == entry.name])
