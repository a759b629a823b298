"""The GPU tier's runner (suite/tune/transfer.py), on the CPU at a tiny scale: it reruns the
points another tier chose on val, sets its own target apart from the scored runs, and
refuses selections that are missing or that would set anything but the optimizer."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from suite import record
from suite.report.documents import tier
from suite.tune.protocol import Protocol
from suite.tune.space import CONF
from suite.tune.study_config import StudyError
from suite.tune.transfer import Transfer, run


def _raw(out, select_from, **kw):
    raw = dict(out=str(out), select_from=str(select_from), reference="adamw",
               rerun_seeds=[1, 2], target_seeds=[1001, 1002, 1003], evals=2,
               run_overrides=["threads=1", "logger=none", "progress=none"],
               optimizers=["adamw", "sgd"], workloads={"toy": {"kind": "toy", "steps": 30}})  # fmt: skip
    raw.update(kw)
    return raw


def test_the_committed_gpu_protocol_reads_and_matches_the_cpu_tier():
    gpu = Transfer.load("gpu")
    cpu = yaml.safe_load((CONF / "protocol" / "cpu.yaml").read_text())
    assert gpu.optimizers == tuple(cpu["optimizers"]) and gpu.reference == cpu["reference"]
    assert set(gpu.workloads) == set(cpu["workloads"])
    assert all(gpu.workloads[t]["steps"] > cpu["workloads"][t]["steps"] for t in gpu.workloads)
    assert "device=cuda" in gpu.run_overrides
    with pytest.raises(StudyError, match="tunes nothing"):
        Protocol.load("gpu")


def test_missing_or_hostile_selections_are_refused_before_any_run(tmp_path):
    src = tmp_path / "cpu"
    t = Transfer.from_mapping("t", _raw(tmp_path / "gpu", src))
    with pytest.raises(StudyError, match=r"2 selections missing .* toy/adamw, toy/sgd"):
        run(t, jobs=1)
    for opt in ("adamw", "sgd"):
        (src / "toy" / opt).mkdir(parents=True)
        good = {"overrides": ["optimizer.lr=0.01"]}
        (src / "toy" / opt / "selected.json").write_text(json.dumps(good))
    bad = {"overrides": ["optimizer.lr=0.01", "hydra.run.dir=/etc"]}
    (src / "toy/sgd/selected.json").write_text(json.dumps(bad))
    with pytest.raises(StudyError, match="selected.json.*hydra.run.dir"):
        run(t, jobs=1)
    assert not (tmp_path / "gpu").exists()  # nothing ran


@pytest.mark.slow  # a real toy campaign (conftest.toy_tier) and 7 runs
def test_the_chosen_points_rerun_at_the_new_budget_with_their_own_target(toy_tier, tmp_path):
    src, _ = toy_tier
    t = Transfer.from_mapping("t", _raw(tmp_path, src))
    assert run(t, jobs=2) == 0
    for opt in ("adamw", "sgd"):
        chosen = json.loads((src / "toy" / opt / "selected.json").read_text())["overrides"]
        for seed in (1, 2):
            run_dir = tmp_path / "toy" / opt / "reruns" / f"s{seed}"
            s = record.read_summary(run_dir)
            assert s["status"] == "ok" and s["max_steps"] == 30 and s["seed"] == seed
            cmd = json.loads((run_dir / "env.json").read_text())["command"]
            assert all(o in cmd for o in chosen)
    target = json.loads((tmp_path / "toy/target/target.json").read_text())
    assert target["seeds"] == [1001, 1002, 1003] and len(target["values"]) == 3
    assert sorted(target["values"])[1] == target["value"]  # the median
    before = sorted(tmp_path.rglob("summary.json"))
    assert run(t, jobs=2) == 0  # resumable: nothing finished runs again
    assert sorted(tmp_path.rglob("summary.json")) == before
    # its report: the tier's tables, without the tuning ones (nothing was tuned here)
    raw = _raw(tmp_path, src)
    text = (tier.write(tmp_path, raw, tmp_path / "report", n_boot=100) / "README.md").read_text()
    assert "not tuned again here" in text and "Cost to tune" not in text
    assert "## Leaderboard, all workloads" in text
    assert re.search(r"\| sgd \| [0-2]/2 \[", text)  # reach k/n of its two scored seeds
