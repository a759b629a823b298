"""``make compare TIER=...`` (suite/tune/tier_compare.py): a candidate gets the tier's own
budget on a real toy tier, its scored seeds interleaved with a reference control; the
control reproduces the tier's records, the candidate joins the tier's report, the verdicts
pair with the control, and nothing is written into the tier."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from suite.tune.compare import main as compare_main
from suite.tune.protocol import Protocol
from suite.tune.space import SpaceError
from suite.tune.study_config import StudyError
from suite.tune.tier_compare import choose_tasks, run, tier_ready


def _digest(root):
    return {
        str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(root.rglob("*"))
        if f.is_file()
    }


@pytest.fixture
def tier(toy_tier, tmp_path):
    src, raw = toy_tier
    root = tmp_path / "tier"
    shutil.copytree(src, root)
    return Protocol.from_mapping("toy", {**raw, "out": str(root)})


@pytest.mark.slow  # a real toy campaign (conftest.toy_tier), then 9 runs of the candidate
def test_a_candidate_gets_the_tiers_budget_beside_a_reproducing_control(tier, tmp_path):
    before, out, lines = _digest(tier.out), tmp_path / "cmp", []
    run(tier, "adam", out, log=lines.append)
    assert _digest(tier.out) == before  # the tier is read, never written
    cand = out / "toy" / "adam"
    for k in range(tier.studies):  # the tier's studies, each of its trials
        study = json.loads((cand / f"study-{k}" / "study.json").read_text())
        assert sum(t["state"] == "COMPLETE" for t in study["trials"]) == tier.trials_per_study
    target = json.loads((tier.out / "toy" / "target" / "target.json").read_text())
    assert json.loads((cand / "selected.json").read_text())["target"]["value"] == target["value"]
    seeds = {f"s{s}" for s in tier.rerun_seeds}
    assert {d.name for d in (cand / "reruns").iterdir()} == seeds
    ctrl = out / "control" / "toy" / tier.reference / "reruns"
    assert {d.name for d in ctrl.iterdir()} == seeds
    timeline = json.loads((out / "control" / "toy" / "timeline.json").read_text())["runs"]
    assert [r["who"] for r in timeline] == ["candidate", "control"] * len(seeds)
    verdicts = (out / "verdicts.md").read_text()
    n = len(seeds)  # same code, seeds and thread count: the control is the tier's run again
    assert f"the control reproduces the tier's {tier.reference} best" in verdicts
    assert f"at {n}/{n} seeds" in verdicts and "stale" not in verdicts
    assert "toy:" in verdicts and "step time x" in verdicts
    report = (out / "report" / "README.md").read_text()
    assert "3 optimizers on 1 workloads" in report and "| adam" in report


@pytest.mark.slow  # the toy tier to refuse against
def test_bad_input_is_refused_in_one_line_before_any_work(tier, tmp_path):
    out = tmp_path / "cmp"
    with pytest.raises(StudyError, match="already in the toy tier"):
        run(tier, "sgd", out)
    with pytest.raises(StudyError, match="unknown task 'nope'.*valid: toy"):
        run(tier, "adam", out, tasks=["nope"])
    with pytest.raises(StudyError, match="inside the tier"):
        run(tier, "adam", tier.out / "mine")
    with pytest.raises(SpaceError, match="unknown optimizer 'not_an_optimizer'; valid: adam"):
        run(tier, "not_an_optimizer", out)
    assert not out.exists()
    (tier.out / "toy" / "target" / "target.json").unlink()  # the workload is not complete
    with pytest.raises(StudyError, match="no workload of the toy tier"):
        choose_tasks(tier, None)
    with pytest.raises(StudyError, match="'toy' is not complete"):
        choose_tasks(tier, ["toy"])


def test_the_cli_refuses_baselines_beside_a_tier(tmp_path, capsys):
    argv = ["--tier", "cpu", "--baselines", "x", "--optimizer", "adam", "--out", str(tmp_path)]
    assert compare_main(argv) == 2
    assert "--baselines and --tier exclude each other" in capsys.readouterr().err


@pytest.mark.parametrize(
    "variables, flag",
    [(["TIER=cpu"], "--tier"), (["BASELINES=results/baselines"], "--baselines"), ([], None)],
)
def test_make_compare_passes_the_tier_or_the_baselines_never_both(variables, flag):
    """`make compare TIER=cpu` passed --baselines too, which compare refuses ("exclude each
    other"); with neither, compare picks (the tier once complete): make's own command line."""
    done = subprocess.run(
        ["make", "-n", "compare", "OPTIMIZER=adamw", "OUT=x", *variables],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    argv = done.stdout.split()
    assert [f for f in ("--tier", "--baselines") if f in argv] == ([flag] if flag else [])


@pytest.mark.slow  # a real toy campaign (conftest.toy_tier)
def test_compare_defaults_to_a_tier_only_once_every_unit_is_done(tier):
    assert tier_ready(tier)
    (tier.out / "toy" / "sgd" / "reruns" / "s2" / "summary.json").unlink()
    assert not tier_ready(tier)
