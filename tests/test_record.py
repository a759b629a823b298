"""The run record's contract: the Summary dataclass reads every committed summary.json and
refuses a record that is not one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from suite import record

ROOT = Path(__file__).resolve().parent.parent


def committed_summaries() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "results/**/summary.json"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    return [ROOT / f for f in out]


def test_every_committed_summary_reads_as_a_summary_with_no_unknown_keys():
    paths = committed_summaries()
    if not paths:
        pytest.skip("no committed results in this checkout")
    for path in paths:
        raw = record.read_summary(path.parent)
        typed = record.Summary.from_dict(raw, str(path))
        assert typed.extra == {}, f"{path}: keys not in Summary: {sorted(typed.extra)}"
        assert {k: v for k, v in typed.to_dict().items() if k in raw} == raw


def test_required_keys_are_fields_and_a_missing_one_or_bad_status_is_refused(tmp_path):
    assert set(record.SUMMARY_KEYS) <= set(record.SUMMARY_FIELDS)
    summary = dict.fromkeys(record.SUMMARY_KEYS)
    summary["status"] = "ok"
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert record.read_summary(tmp_path) == summary  # read as written, optional keys absent
    typed = record.Summary.from_dict(summary)
    assert typed.optimizer_entry is None and typed.to_dict()["status"] == "ok"
    (tmp_path / "summary.json").write_text(json.dumps({**summary, "status": "done"}))
    with pytest.raises(record.RecordError, match="status 'done' not one of"):
        record.read_summary(tmp_path)
    del summary["wandb"]
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(record.RecordError, match=r"missing keys \['wandb'\]"):
        record.read_summary(tmp_path)


def test_keys_of_a_newer_writer_are_kept_not_dropped():
    summary = {**dict.fromkeys(record.SUMMARY_KEYS), "status": "ok", "future_key": 3}
    typed = record.Summary.from_dict(summary)
    assert typed.extra == {"future_key": 3} and typed.to_dict()["future_key"] == 3
