"""The budget check of the CPU tier (suite.report.documents.flatness): known curves, known verdicts."""

from __future__ import annotations

import json

import pytest

from suite import record
from suite.report.documents import flatness


def _target(tmp_path, curves, direction="max", metric="val/acc"):
    seeds = list(range(1001, 1001 + len(curves)))
    for seed, evals in zip(seeds, curves, strict=True):
        run = tmp_path / f"s{seed}"
        run.mkdir(parents=True)
        for step, value in evals:
            record.append_jsonl(
                run / "metrics.jsonl", {"event": "eval", "step": step, metric: value}
            )
        record.append_jsonl(run / "metrics.jsonl", {"event": "train", "step": 1, "loss": 9.0})
    target = {"metric": metric, "direction": direction, "value": 0.8, "seeds": seeds}
    (tmp_path / "target.json").write_text(json.dumps(target))
    return tmp_path


def test_a_curve_that_stopped_improving_is_flat_and_one_that_climbs_is_not(tmp_path):
    flat = [[(100, 0.70), (300, 0.80), (400, 0.801)], [(100, 0.6), (300, 0.79), (400, 0.79)],
            [(100, 0.7), (300, 0.82), (400, 0.815)]]  # fmt: skip
    c = flatness.check(_target(tmp_path / "a", flat), budget=400)
    assert c["gains"] == pytest.approx({1001: 0.001, 1002: 0.0, 1003: 0.0})
    assert c["flat"] and c["spread"] == pytest.approx(0.01527, abs=1e-4)
    climbing = [[(100, 0.5), (300, 0.7), (400, 0.8)], [(100, 0.5), (300, 0.71), (400, 0.80)]]
    (tmp_path / "b").mkdir()
    c = flatness.write("toy", _target(tmp_path / "b", climbing), budget=400)
    assert not c["flat"] and c["gain"] == pytest.approx(0.095)
    assert "NOT flattened" in (tmp_path / "b" / "flatness.md").read_text()
    assert (tmp_path / "b" / "flatness.png").read_bytes()[:4] == b"\x89PNG"


def test_twice_the_budget_decides_where_its_runs_exist(tmp_path):
    at_s = [[(100, 0.70), (200, 0.80)], [(100, 0.6), (200, 0.78)], [(100, 0.6), (200, 0.79)]]
    d = _target(tmp_path / "d", at_s)
    assert not flatness.check(d, budget=200)["flat"]  # last quarter: +0.1 median, sd 0.01
    _target(d / "double", [[(200, 0.7), (400, 0.805)], [(400, 0.79)], [(400, 0.80)]])
    c = flatness.check(d, budget=200)
    assert c["test"] == "twice the budget" and c["gain"] == pytest.approx(0.01)
    assert not c["flat"]  # the gain (0.01) is not below the spread (0.01)
    (d / "double" / "s1003" / "metrics.jsonl").unlink()
    record.append_jsonl(
        d / "double" / "s1003" / "metrics.jsonl", {"event": "eval", "step": 400, "val/acc": 0.791}
    )
    c = flatness.check(d, budget=200)
    assert c["gain"] == pytest.approx(0.005) and c["flat"]


def test_a_loss_is_signed_so_that_falling_is_a_gain(tmp_path):
    (tmp_path / "c").mkdir()
    falling = [[(50, 3.0), (150, 2.0), (200, 1.5)], [(50, 3.0), (150, 2.1), (200, 1.6)]]
    c = flatness.check(_target(tmp_path / "c", falling, "min", "val/loss"), budget=200)
    assert c["gain"] == pytest.approx(0.5) and not c["flat"]
