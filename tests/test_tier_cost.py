"""What a tier cost (suite/tune/cost.py) and which code made its records (suite/runner/env.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from suite import record
from suite.record import write_json
from suite.tune import cost
from suite.tune.protocol import Protocol

REPO = Path(__file__).resolve().parents[1]


def _raw(out: Path) -> dict:
    return dict(out=str(out), reference="adamw", studies=3, trials_per_study=1,
                sampler="sobol", study_seed_base=100, rerun_seeds=[1, 2, 3],
                target_seeds=[1001, 1002, 1003, 1004, 1005], evals=2,
                run_overrides=["threads=1"], optimizers=["adamw", "sgd"],
                workloads={"toy": {"kind": "toy", "steps": 20},
                           "toy2": {"kind": "toy", "steps": 20}})  # fmt: skip


def _run(folder: Path, seconds: float | None, commit="a" * 40, torch="2.14.1") -> None:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("seed: 1\n")
    env = {"git_commit": commit, "torch_threads": 1, "cpu": "EPYC", "cpu_count": 2,
           "packages": {"torch": torch}, "time_utc": "2026-12-05T01:00:00+00:00"}  # fmt: skip
    write_json(folder / "env.json", env)
    if seconds is not None:
        summary = {**dict.fromkeys(record.SUMMARY_KEYS), "status": "ok", "wall_seconds": seconds}
        write_json(folder / "summary.json", summary)


def test_core_hours_add_up_per_workload_and_stage(tmp_path):
    p = Protocol.from_mapping("t", _raw(tmp_path))
    _run(tmp_path / "toy/adamw/study-0/trials/0000", 3600.0)
    _run(tmp_path / "toy/sgd/study-1/trials/0000", 1800.0, commit="b" * 40)
    _run(tmp_path / "toy/target/s1001", 360.0)
    _run(tmp_path / "toy/target/double/s1001", 720.0)
    _run(tmp_path / "toy2/sgd/reruns/s1", 7200.0, torch="2.15.0")
    _run(tmp_path / "toy2/sgd/reruns/s2", None)  # running now: not counted yet
    killed = tmp_path / "toy2/sgd/reruns/s3.killed-1"
    _run(killed, None)
    for step, elapsed in ((10, 100.0), (20, 900.0)):
        with (killed / "metrics.jsonl").open("a") as f:
            f.write(json.dumps({"event": "eval", "step": step, "elapsed_s": elapsed}) + "\n")
    runs = cost.runs_table(p)
    assert sorted(runs["stage"]) == [
        "budget check",
        "killed",
        "reruns",
        "studies",
        "studies",
        "target",
    ]
    hours = cost.core_hours(runs, list(p.workloads)).set_index("workload")
    assert hours.loc["toy", "studies"] == 1.5 and hours.loc["toy", "target"] == 0.1
    assert hours.loc["toy", "budget check"] == 0.2 and hours.loc["toy2", "reruns"] == 2.0
    assert hours.loc["toy2", "killed"] == 0.25  # its last evaluation: a lower bound
    assert hours.loc["all", "total"] == 4.05 and hours.loc["all", "runs"] == 6
    text = cost.document(p)
    assert "in progress: 0 of" in text and "**4.0 core-hours**" in text  # 4.05 at .1f
    assert "`aaaaaaa` (5 runs), `bbbbbbb` (1 runs)" in text
    assert "torch 2.14.1 (5 runs), 2.15.0 (1 runs)" in text  # two versions are named
    # 2 workloads x (2 x 3 trials + 5 target + 5 budget check + 2 x 3 reruns): folders, not
    # the ETA's run count (a budget-check run of twice the steps counts twice there)
    assert "6 run folders for the plan's 44 (1 killed and run again)" in text


def test_folders_beyond_the_plan_are_said_to_be_cut_off_trials(tmp_path):
    """More finished folders than the plan's (a stop cut a study off after its trial had
    finished; Optuna drew a replacement) are counted and named, never hidden."""
    from suite.tune.plan import plan

    p = Protocol.from_mapping("t", _raw(tmp_path))
    units = plan(p)
    planned = sum(u.folders for u in units)
    stage = {"study": "studies", "target": "target", "budget": "budget check", "rerun": "reruns"}
    stages = [stage[u.kind] for u in units for _ in range(u.folders)]
    runs = cost.pd.DataFrame({"stage": [*stages, "studies", "studies", "killed"]})
    line = cost._folders_line(runs, units)
    assert line.startswith(f"{planned + 3} run folders for the plan's {planned} (1 killed")
    assert "; 2 study trials that finished after a stop" in line


@pytest.mark.parametrize("bad, says", [("text", "not valid JSON"), ("fifo", "not a regular file")])
def test_an_env_json_that_is_not_a_json_file_is_named_not_read(tmp_path, bad, says):
    """env.json is read like every record: bounded, regular files only (a FIFO would hang)."""
    p = Protocol.from_mapping("t", _raw(tmp_path))
    run = tmp_path / "toy/adamw/study-0/trials/0000"
    _run(run, 60.0)
    (run / "env.json").unlink()
    if bad == "fifo":
        os.mkfifo(run / "env.json")
    else:
        (run / "env.json").write_text("{not json")
    with pytest.raises(record.RecordError, match=f"env.json: {says}"):
        cost.runs_table(p)


def test_an_empty_tier_is_refused_in_one_line(tmp_path):
    (tmp_path / "toy").mkdir()
    p = Protocol.from_mapping("t", _raw(tmp_path))
    with pytest.raises(Exception, match="holds no run of the tier yet"):
        cost.document(p)


def test_a_copy_made_by_git_archive_names_its_commit(tmp_path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout: nothing to archive")
    tree = subprocess.run(
        ["git", "archive", "HEAD", "suite"], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=tree, check=True)
    assert not (tmp_path / ".git").exists()
    out = subprocess.run(
        [sys.executable, "-c", "from suite.runner.env import git_commit; print(git_commit())"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert out == head.stdout.strip()
