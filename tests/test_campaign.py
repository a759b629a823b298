"""The benchmark tier's campaign (suite/tune/campaign.py): the committed protocol is
valid, units run in dependency order, time to target is read from evaluations against
the committed target (never the summary's own), and a small campaign on the toy task
runs end to end, resumes, and keeps target-setting runs apart from the scored ones."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from suite import record
from suite.tune.campaign import campaign
from suite.tune.plan import done, estimate, plan, ready, seconds_per_run
from suite.tune.protocol import Protocol
from suite.tune.stages import time_to_target
from suite.tune.study_config import StudyError


def test_committed_cpu_protocol_is_valid_and_sized():
    p = Protocol.load("cpu")
    assert p.studies >= 3 and p.studies * p.trials_per_study >= 16
    assert len(p.rerun_seeds) >= 5 and len(p.target_seeds) >= 5
    assert len(p.optimizers) == len(set(p.optimizers)) >= 12
    kinds = {w["kind"] for w in p.workloads.values()}
    assert {"cnn", "vit", "lm", "deepobs"} <= kinds
    assert all(w["steps"] >= 1000 for w in p.workloads.values() if w["kind"] == "lm")


def _raw(**kw):
    raw = dict(out="unused", reference="adamw", studies=3, trials_per_study=1,
               sampler="sobol", study_seed_base=100, rerun_seeds=[1, 2, 3],
               target_seeds=[1001, 1002, 1003, 1004, 1005], evals=2,
               run_overrides=["threads=1", "logger=none", "progress=none"],
               optimizers=["adamw", "sgd"], workloads={"toy": {"kind": "toy", "steps": 20}})  # fmt: skip
    raw.update(kw)
    return raw


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(reference="lion"), "reference 'lion' is not among"),
        (dict(studies=2), "need >= 3 independent studies"),
        (dict(target_seeds=[1, 1002, 1003, 1004, 1005]), "must be distinct"),
        (dict(study_seed_base=1), "overlap"),
        (dict(optimizers=["adamw", "nope"]), "nope"),
    ],
)
def test_bad_protocols_are_refused_in_one_line(bad, match):
    with pytest.raises(StudyError, match=match):
        Protocol.from_mapping("t", _raw(**bad)).check()


def test_plan_order_and_dependencies(tmp_path):
    p = Protocol.from_mapping("t", _raw(out=str(tmp_path)))
    units = plan(p)
    labels = [u.label for u in units]
    assert labels.index("toy/target/target") > max(
        labels.index(f"toy/adamw/study-{k}") for k in range(3)
    )
    target = next(u for u in units if u.kind == "target")
    rerun = next(u for u in units if u.kind == "rerun" and u.optimizer == "sgd")
    assert not ready(p, target, set()) and not ready(p, rerun, {"toy/target/target"})
    studies = {f"toy/{o}/study-{k}" for o in ("adamw", "sgd") for k in range(3)}
    checked = studies | {"toy/target/target", "toy/target/budget"}
    assert ready(p, target, studies) and not ready(p, rerun, checked)  # no verdict yet
    sgd_study = next(u for u in units if u.kind == "study" and u.optimizer == "sgd")
    adamw_study = next(u for u in units if u.kind == "study" and u.optimizer == "adamw")
    (tmp_path / "toy" / "target").mkdir(parents=True)
    for flat in (False, True):  # a short budget holds every study but the reference's
        (tmp_path / "toy/target/flatness.json").write_text(json.dumps({"flat": flat}))
        assert ready(p, rerun, checked) is flat and ready(p, sgd_study, checked) is flat
        assert ready(p, adamw_study, set())
    (tmp_path / "toy/target/flatness.json").write_text(json.dumps({"flat": False}))
    waived = Protocol.from_mapping("t", _raw(out=str(tmp_path), workloads={"toy": {
        "kind": "toy", "steps": 20, "budget_waiver": "a test"}}))  # fmt: skip
    assert ready(waived, rerun, checked)
    assert sum(u.runs for u in units) == 2 * 3 * 1 + 5 + 2 * 5 + 2 * 3  # budget: 5 runs of 2S


def _record(run_dir, evals, status="ok", max_steps=100, own_target=0.99):
    run_dir.mkdir(parents=True)
    target = {"metric": "val/acc", "value": own_target, "direction": "max"}
    summary = dict.fromkeys(record.SUMMARY_KEYS)
    summary.update(status=status, max_steps=max_steps, target=target)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    for step, acc in evals:
        record.append_jsonl(
            run_dir / "metrics.jsonl", {"event": "eval", "step": step, "val/acc": acc}
        )


def _timed(run_dir, wall, max_steps=20):
    _record(run_dir, [(10, 0.5)], max_steps=max_steps)
    summary = {**json.loads((run_dir / "summary.json").read_text()), "wall_seconds": wall}
    (run_dir / "summary.json").write_text(json.dumps(summary))


def test_the_estimate_reads_seconds_from_the_tiers_records_else_as_given(tmp_path):
    p = Protocol.from_mapping("t", _raw(out=str(tmp_path)))
    assert "not measured yet" in estimate(p, {}) and "nan" in estimate(p, {})
    assert "toy: 27 runs (27 to run) = 0.1 core-h" in estimate(p, {"toy": 10})
    for k, wall in enumerate([30.0, 50.0, 40.0]):
        _timed(tmp_path / "toy" / "adamw" / "study-0" / "trials" / f"{k:04d}", wall)
    price = seconds_per_run(p, {"toy": 10})  # measured beats given
    assert price[("toy", "adamw")] == (40.0, 30.0, "measured")
    assert price[("toy", "sgd")] == (10, 10, "given")
    # 21 runs of adamw (studies, target, budget check, reruns) at 40 s, 6 of sgd at 10 s
    assert "toy: 27 runs (27 to run) = 0.2 core-h" in estimate(p, {"toy": 10})
    double = tmp_path / "toy" / "target" / "double" / "s1"  # twice the budget: counted at half
    _timed(double, 100.0, max_steps=40)
    assert seconds_per_run(p, {})[("toy", "adamw")][0] == 45.0  # median of 30, 40, 50 and 50


def test_an_optimizer_unmeasured_on_a_workload_is_priced_by_its_factor_elsewhere(tmp_path):
    """sgd took 2x and 3x adamw's seconds on toy and toy3: on toy2 it is priced at 2.5x."""
    workloads = {t: {"kind": "toy", "steps": 20} for t in ("toy", "toy2", "toy3")}
    p = Protocol.from_mapping("t", _raw(out=str(tmp_path), workloads=workloads))
    for task, ref, sgd in (("toy", 10.0, 20.0), ("toy2", 8.0, None), ("toy3", 10.0, 30.0)):
        _timed(tmp_path / task / "adamw" / "study-0" / "trials" / "0000", ref)
        if sgd is not None:
            _timed(tmp_path / task / "sgd" / "study-0" / "trials" / "0000", sgd)
    assert seconds_per_run(p, {})[("toy2", "sgd")] == (20.0, 20.0, "factor")
    text = estimate(p, {})
    assert "toy2: 27 runs" in text and "1 as the reference x their factor" in text, text


def test_time_to_target_reads_evaluations_against_the_committed_target(tmp_path):
    target = {"metric": "val/acc", "value": 0.8, "direction": "max"}
    _record(tmp_path / "a", [(25, 0.5), (50, 0.81), (75, 0.7)])
    _record(tmp_path / "b", [(25, 0.5), (50, 0.6)])
    _record(tmp_path / "c", [(25, 0.9)], status="diverged")
    assert time_to_target(tmp_path / "a", target) == 0.5  # the summary's 0.99 is not read
    assert time_to_target(tmp_path / "b", target) == pytest.approx(1 + 0.2 / 0.8)
    assert time_to_target(tmp_path / "c", target) == math.inf
    low = {"metric": "val/acc", "value": 0.4, "direction": "max"}
    assert time_to_target(tmp_path / "b", low) == 0.25


@pytest.mark.slow
def test_a_toy_campaign_runs_resumes_and_keeps_targets_apart(toy_tier, tmp_path):
    src, raw = toy_tier  # conftest: campaign(p, jobs=2) returned 0 on it
    shutil.copytree(src, tmp_path, dirs_exist_ok=True)
    p = Protocol.from_mapping("t", {**raw, "out": str(tmp_path)})
    assert all(done(p, u) for u in plan(p))
    target = json.loads((tmp_path / "toy/target/target.json").read_text())
    assert target["seeds"] == [1001, 1002, 1003, 1004, 1005] and len(target["values"]) == 5
    scored = {d.name for o in ("adamw", "sgd") for d in (tmp_path / "toy" / o / "reruns").iterdir()}
    assert scored == {"s1", "s2", "s3"}
    sel = json.loads((tmp_path / "toy/sgd/selected.json").read_text())
    assert len(sel["trials"]) == 3 and sel["target"]["value"] == target["value"]
    doubled = record.read_summary(tmp_path / "toy/target/double/s1001")  # the budget check
    assert doubled["max_steps"] == 40 and "toy" in (tmp_path / "toy/target/flatness.md").read_text()
    # a killed rerun: its folder is kept aside, the seed runs again under its own name
    killed = tmp_path / "toy/sgd/reruns/s2"
    (killed / "summary.json").unlink()
    (log,) = tmp_path.glob("toy/sgd/study-*/logs/reruns_s2.log")
    first_log = log.read_text()
    before = sorted(p.out.rglob("summary.json"))
    assert campaign(p, jobs=1) == 0
    assert (tmp_path / "toy/sgd/reruns/s2.killed-1").is_dir()
    assert record.read_summary(killed)["status"] == "ok"
    assert log.read_text().startswith(first_log) and log.read_text().count("suite.run") == 2
    assert len(sorted(p.out.rglob("summary.json"))) == len(before) + 1
