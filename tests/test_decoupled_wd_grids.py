"""The decoupled-weight-decay grids (conf/experiment/decoupled_wd*.yaml): real Hydra compose,
the CPU tier's sizes, a grid where decoupled decay can act, and 2 real cells of each run."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from suite.report.documents.experiments import decoupled_wd
from suite.report.read.collect import collect

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "suite" / "conf"
GRIDS = {"decoupled_wd": "cnn_fashion", "decoupled_wd_lm_grid": "lm_shakespeare"}
TIER = yaml.safe_load((CONF / "protocol" / "cpu.yaml").read_text())["workloads"]


def _composed(experiment: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[f"experiment={experiment}"],
            return_hydra_config=True,
        )


def _values(text) -> list[float]:
    return [float(v) for v in str(text).split(",")]


@pytest.mark.parametrize("experiment, workload", sorted(GRIDS.items()))
def test_a_grid_composes_at_the_cpu_tiers_sizes(experiment, workload):
    cfg = _composed(experiment)
    assert cfg.hydra.runtime.choices.task == workload
    tier = TIER[workload]
    assert cfg.steps == tier["steps"]
    for override in tier["overrides"]:  # ++task.width=8, log_every=25, ...
        key, value = override.lstrip("+").split("=", 1)
        assert OmegaConf.select(cfg, key) == yaml.safe_load(value), (experiment, key)
    assert (cfg.threads, cfg.checkpoint_every, cfg.hydra.runtime.choices.logger) == (1, 0, "none")


@pytest.mark.parametrize("experiment", sorted(GRIDS))
def test_a_grid_gives_decoupled_decay_room_and_the_best_lr_a_neighbour_each_side(experiment):
    """The largest wd at the middle lr shrinks weights by lr * wd * steps >= 0.1 (of order the
    paper's); wd 0 is in the grid (the closed end); both optimizers share the grid."""
    cfg = _composed(experiment)
    params = cfg.hydra.sweeper.params
    lrs, wds = _values(params["optimizer.lr"]), _values(params["optimizer.weight_decay"])
    assert len(lrs) >= 3 and len(wds) >= 3 and min(wds) == 0
    middle = sorted(lrs)[len(lrs) // 2]
    assert middle * max(wds) * cfg.steps >= 0.1
    assert str(params["optimizer"]) == "adam,adamw" and _values(params["seed"]) == [0, 1, 2]


SMALL = {
    "decoupled_wd": ["task.eval_size=64", "task.eval_train_size=64", "task.eval_batch_size=64"],
    "decoupled_wd_lm_grid": ["task.eval_windows=2", "task.eval_batch_size=2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(GRIDS))
def test_two_cells_of_a_grid_run_for_real_and_the_verdict_reads_them(experiment, tmp_path):
    """`python -m suite.run -m experiment=...` as the Makefile runs it, cut to one seed, one
    (lr, wd) cell per optimizer and 3 steps: two ok records at the grid's sizes."""
    sweep = tmp_path / "sweep"
    argv = [
        *("-m", "suite.run", "-m", f"experiment={experiment}"),
        *("seed=0", "optimizer=adam,adamw", "optimizer.lr=3e-3", "optimizer.weight_decay=0.1"),
        *("steps=3", "eval_every=0", "log_every=1", "progress=none"),
        *SMALL[experiment],
        *("hydra.launcher.n_jobs=1", f"hydra.sweep.dir={sweep}"),
    ]
    done = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    runs = collect([sweep]).runs
    assert sorted(runs["optimizer"]) == ["adam", "adamw"] and (runs["status"] == "ok").all()
    assert set(runs["task"]) == {GRIDS[experiment]}
    assert set(runs["hp.lr"]) == {3e-3} and set(runs["hp.weight_decay"]) == {0.1}
    assert all(math.isfinite(v) for v in runs["best_target"])
    text = decoupled_wd(runs)
    chosen = [line for line in text.splitlines() if line.startswith("- adam")]
    assert len(chosen) == 2 and all("lr=0.003, " in c and "weight_decay=0.1 " in c for c in chosen)
    assert "edge of the" not in text  # one cell: no grid, so no edge
