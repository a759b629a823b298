"""Warm runs (suite.tune.warm): a run forked from the fork server is the same run as
``python -m suite.run`` started cold: same metrics bit for bit, same exit codes, this
process's environment and working directory at launch, output in the run's log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from suite.tune import warm
from tests.conftest import run_suite

pytestmark = pytest.mark.skipif(not warm.available(), reason="no fork server on this platform")

RUN = ["task=fmnist_mlp", "optimizer=adam", "steps=6", "eval_every=3", "logger=none"]
RUN += ["progress=none", "threads=1", "seed=3"]


def metrics(run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [
        {k: v for k, v in r.items() if not any(w in k for w in ("time", "sec", "elapsed"))}
        for r in rows
    ]


def test_a_warm_run_writes_the_records_a_cold_run_writes(tmp_path):
    cold, hot = tmp_path / "cold", tmp_path / "warm"
    run_suite(*RUN, run_dir=cold)
    log = tmp_path / "warm.log"
    log.write_text("")
    assert warm.run([*RUN, f"hydra.run.dir={hot}"], log) == 0
    assert metrics(hot) == metrics(cold)
    assert len(metrics(hot)) >= 2
    assert "[ok]" in log.read_text()
    cold_env = json.loads((cold / "env.json").read_text())
    hot_env = json.loads((hot / "env.json").read_text())
    assert hot_env["command"][:-1] == cold_env["command"][:-1]  # all but hydra.run.dir


def test_a_warm_run_takes_the_environment_and_directory_of_its_launch(tmp_path, monkeypatch):
    warm.run(["--help"], tmp_path / "first.log")  # the fork server is up before the change
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPTBENCH_DATA", str(tmp_path / "no-data-here"))
    log = tmp_path / "run.log"
    log.write_text("")
    code = warm.run([*RUN, "hydra.run.dir=rel"], log)
    assert code == 2, log.read_text()  # refused: the data folder named in the new env is empty
    assert "no-data-here" in log.read_text()
    assert os.environ["OPTBENCH_DATA"].endswith("no-data-here")


def test_bad_input_to_a_warm_run_exits_2_with_one_line(tmp_path):
    log = tmp_path / "bad.log"
    log.write_text("")
    code = warm.run(["task=fmnist_mlp", "optimizer=adam", "optimizer.lr=-1", "logger=none"], log)
    assert code == 2
    assert "lr" in log.read_text() and "-1" in log.read_text(), log.read_text()
    assert len(log.read_text().strip().splitlines()) == 1


KILLED_STUDY = """
import sys
from pathlib import Path
from suite.tune import warm
if __name__ == "__main__":
    warm.run(sys.argv[2:], Path(sys.argv[1]))
"""


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow  # ~15 s: its own fork server imports torch, timm and transformers
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_a_killed_study_leaves_no_fork_server_and_no_run_behind(tmp_path):
    """SIGKILL to the study: its fork server and the run forked from it both end."""
    script, log, run_dir = tmp_path / "study.py", tmp_path / "run.log", tmp_path / "run"
    script.write_text(KILLED_STUDY)
    args = ["task=toy", "optimizer=adamw", "steps=10000000", "eval_every=10000000"]
    args += ["logger=none", "progress=none", "threads=1", f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    study = subprocess.Popen([sys.executable, str(script), str(log), *args], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "metrics.jsonl").is_file():  # the run is training
            assert study.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        left_behind = _descendants(study.pid)
        assert len(left_behind) >= 2  # the fork server and the run (and a resource tracker)
    finally:
        study.kill()
        study.wait()
    deadline = time.monotonic() + 20
    while any(map(_alive, left_behind)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in left_behind if _alive(p)]
