"""Study files are small on disk and compacting them keeps every row (real SQLite, real Optuna)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest

from suite.tune import study_file
from suite.tune.study import open_study
from suite.tune.study_config import StudyConfig


def _page_size(path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()


def _stored(url: str) -> list[tuple]:
    """Every study's attributes and every trial's state, params, value and attributes."""
    rows = []
    for summary in optuna.get_all_study_summaries(url):
        study = optuna.load_study(study_name=summary.study_name, storage=url)
        rows.append((summary.study_name, study.user_attrs, summary.datetime_start))
        rows += [
            (t.number, t.state, t.params, t.values, t.user_attrs, t.distributions)
            for t in study.get_trials(deepcopy=False)
        ]
    return rows


def _default_page_study(path) -> str:
    """A study written by plain Optuna (SQLite's default 4,096-byte pages): the old files."""
    url = f"sqlite:///{path}"
    for name in ("a", "b"):
        study = optuna.create_study(study_name=name, storage=url)
        study.set_user_attr("budget", {"trials": 4, "name": name})
        study.optimize(
            lambda t: (
                t.suggest_float("lr", 1e-4, 1.0, log=True)
                + (t.set_user_attr("run_dir", f"trials/{t.number:04d}") or 0)
            ),
            n_trials=4,
        )
    return url


def test_a_new_study_file_has_small_pages(tmp_path):
    open_study(StudyConfig("toy", "sgd", 2, tmp_path))
    assert _page_size(tmp_path / "study.db") == study_file.PAGE_BYTES


def test_compact_keeps_every_row_and_shrinks_the_file(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = tmp_path / "study.db"
    url = _default_page_study(path)
    assert _page_size(path) == 4096
    rows = _stored(url)
    before, after = study_file.compact(path)
    assert _page_size(path) == study_file.PAGE_BYTES
    assert after * 3 < before, (before, after)
    assert _stored(url) == rows
    again = path.read_bytes()
    assert study_file.compact(path) == (after, after) and path.read_bytes() == again  # no churn
    study = optuna.load_study(study_name="a", storage=url)  # still a working study
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True), n_trials=1)
    assert len(study.trials) == 5


def test_compact_tree_leaves_a_held_file_and_names_it(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    free, held = tmp_path / "s1" / "study.db", tmp_path / "s2" / "study.db"
    for path in (free, held):
        path.parent.mkdir()
        _default_page_study(path)
    holder = sqlite3.connect(held, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    lines: list[str] = []
    try:
        done, before, after, left = study_file.compact_tree(tmp_path, log=lines.append)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done == 1 and left == [held] and len(lines) == 1 and str(held) in lines[0]
    assert _page_size(free) == study_file.PAGE_BYTES and _page_size(held) == 4096
    assert after < before


def test_cli_refuses_a_missing_folder_in_one_line(tmp_path, capsys):
    assert study_file.main([str(tmp_path / "nowhere")]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "nowhere" in out[0] and "not a folder" in out[0]


@pytest.mark.parametrize(
    "url, path",
    [
        ("postgresql://host/db", None),
        ("sqlite:///:memory:", None),
        ("sqlite:////a/b/study.db", "/a/b/study.db"),
    ],
)
def test_only_sqlite_files_are_touched(url, path):
    assert study_file.sqlite_path(url) == (None if path is None else Path(path))
