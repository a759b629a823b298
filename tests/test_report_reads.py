"""The report's read path and writes against hostile folders (issue 22): a FIFO named like
a record, symlink loops, names that walk out of the output folder, a kill mid --force."""

from __future__ import annotations

import os
import signal

import pandas as pd
import pytest

from suite.record import RecordError, find_runs, read_jsonl, read_summary
from suite.report.documents import standard as report_main
from suite.report.present.plots.profiles import search_heatmaps


def test_a_fifo_named_like_a_record_is_refused_not_read(tmp_path):
    """Before: read_text() on a FIFO blocked forever (the report hung)."""
    os.mkfifo(tmp_path / "metrics.jsonl")
    os.mkfifo(tmp_path / "summary.json")
    signal.alarm(10)  # a hang fails the test instead of the run
    try:
        with pytest.raises(RecordError, match="not a regular file"):
            read_jsonl(tmp_path / "metrics.jsonl")
        with pytest.raises(RecordError, match="not a regular file"):
            read_summary(tmp_path)
    finally:
        signal.alarm(0)


def test_symlinked_run_folders_are_followed_and_loops_listed(tmp_path):
    """Before: rglob did not follow symlinked folders, so their runs vanished silently."""
    (tmp_path / "elsewhere" / "run1").mkdir(parents=True)
    (tmp_path / "elsewhere" / "run1" / "config.yaml").write_text("a: 1\n")
    root = tmp_path / "root"
    (root / "run0").mkdir(parents=True)
    (root / "run0" / "config.yaml").write_text("a: 1\n")
    (root / "linked").symlink_to(tmp_path / "elsewhere")
    (root / "run0" / "loop").symlink_to(root)  # a loop back to the top
    skipped: list[str] = []
    found = find_runs(root, skipped)
    assert found == [root / "linked" / "run1", root / "run0"]
    assert len(skipped) == 1 and "loop" in skipped[0]


def test_a_search_plot_name_from_a_record_stays_in_the_output_folder(tmp_path):
    """Before: optimizer 'sgd/../../x' from a study.json wrote search_<task>_sgd/../../x.png."""
    out = tmp_path / "a" / "b" / "plots"
    out.mkdir(parents=True)
    trials = pd.DataFrame(
        {
            "task": ["toy"] * 3,
            "optimizer": ["sgd/../../../escaped"] * 3,
            "hparams": [{"lr": 0.1 * (i + 1), "weight_decay": 0.01 * (i + 1)} for i in range(3)],
            "best_val": [1.0, 2.0, 3.0],
            "direction": ["min"] * 3,
            "metric": ["val/loss"] * 3,
        }
    )
    (path,) = search_heatmaps(trials, out)
    assert path.parent == out and path.is_file()
    assert not list(tmp_path.rglob("escaped*.png"))


def test_a_failed_report_force_leaves_the_old_report_whole(tmp_path, monkeypatch):
    """Before: --force unlinked the old files first, so a failure (or kill) mid-build left
    no old report and half a new one."""
    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    (out / "report.md").write_text("old report\n")
    (out / "convergence.csv").write_text("old,table\n")
    (tmp_path / "runs" / "r").mkdir(parents=True)

    def collect(roots):
        raise KeyboardInterrupt  # stands for a kill while building

    monkeypatch.setattr(report_main, "_build", lambda *a: collect(a))
    monkeypatch.setattr(report_main, "collect", lambda roots: _records())
    with pytest.raises(KeyboardInterrupt):
        report_main.write_report([tmp_path / "runs"], out, "t", True, "cmd")
    assert (out / "report.md").read_text() == "old report\n"
    assert (out / "convergence.csv").read_text() == "old,table\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []


def _records():
    from suite.report.read.collect import Records

    runs = pd.DataFrame({"status": ["ok"]})
    problems = pd.DataFrame({"status": pd.Series(dtype=str)})
    return Records(runs, pd.DataFrame(), problems, [], pd.DataFrame())


@pytest.mark.slow  # one real run, then the report (about 15 s here)
def test_the_report_of_a_unicode_folder_under_lc_all_c(tmp_path):
    """Before: UnicodeEncodeError traceback writing report.md (ASCII locale, '±')."""
    import subprocess
    import sys

    from tests.conftest import REPO, run_suite

    runs = tmp_path / "résumé"
    run_dir = f"hydra.run.dir='{runs / 'r1'}'"  # quoted: Hydra's grammar takes no é bare
    run_suite("task=toy", "logger=none", "progress=none", "steps=3", run_dir)
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "suite.report", str(runs), "--out", str(tmp_path / "rep")],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "résumé" in (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
