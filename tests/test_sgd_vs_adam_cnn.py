"""SGD vs Adam on the timm CNN (conf/experiment/sgd_vs_adam_cnn.yaml, make exp-sgd-vs-adam-cnn):
real Hydra compose at the CPU tier's sizes, and the Makefile's three stages run for real at a
few steps (grid -> val-chosen lr -> fresh seeds and twice the steps -> verdict)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from omegaconf import OmegaConf

from suite.report.read.collect import collect
from tests.test_decoupled_wd_grids import ROOT, TIER, _composed

SIZES = ["task.eval_size=64", "task.eval_train_size=64", "task.eval_batch_size=64"]


def test_it_composes_at_the_tiers_cnn_sizes_without_weight_decay():
    cfg = _composed("sgd_vs_adam_cnn")
    assert cfg.hydra.runtime.choices.task == "cnn_fashion"
    for override in TIER["cnn_fashion"]["overrides"]:
        key, value = override.lstrip("+").split("=", 1)
        if key != "log_every":
            assert OmegaConf.select(cfg, key) == yaml.safe_load(value), key
    assert cfg.steps == 1500 > 4 * TIER["cnn_fashion"]["steps"]  # past the tier's early budget
    assert cfg.optimizer.weight_decay == 0 and cfg.optimizer.momentum == 0.9  # heavy ball
    assert cfg.hydra.runtime.choices.schedule == "warmup_cosine"
    assert str(cfg.hydra.sweeper.params["seed"]) == "100,101"  # grid seeds; fresh are 1-8


def _make(target: str, *variables: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", target, f"PY={sys.executable}", *variables],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_the_three_stages_run_for_real_and_the_verdict_reads_them(tmp_path):
    """Two lrs per optimizer at 4 steps: the fresh stage reruns each grid's val choice (read by
    suite.report.documents.chosen) at seeds 1-8 and at 8 steps at seeds 1-3; the verdict is
    chosen on the grid, scored at the fresh seeds, with the budget check."""
    runs, out = tmp_path / "runs", tmp_path / "out"
    small = ["SVA_STEPS=4", "SVA_EVAL=2", f"ARGS=log_every=1 progress=none {' '.join(SIZES)}"]
    for opt, lrs in (("sgd", "0.01,0.1"), ("adam", "0.001,0.01")):
        done = subprocess.run(
            [sys.executable, "-m", "suite.run", "-m", "experiment=sgd_vs_adam_cnn",
             f"optimizer={opt}", f"optimizer.lr={lrs}", "seed=100", "steps=4", "eval_every=2",
             "progress=none", *SIZES, f"hydra.sweep.dir={runs / 'grid' / opt}"],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    done = _make("exp-sgd-vs-adam-cnn-fresh", f"SVA_RUNS={runs}", *small, f"EXP_OUT={out}")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    fresh = collect([runs / "fresh"]).runs
    assert sorted(set(fresh["seed"])) == list(range(1, 9)) and len(fresh) == 16
    for opt in ("sgd", "adam"):
        grid = collect([runs / "grid" / opt]).runs
        assert set(fresh[fresh["optimizer"] == opt]["hp.lr"]) < set(grid["hp.lr"])  # one of them
    double = collect([runs / "double"]).runs
    assert len(double) == 6 and set(double["max_steps"]) == {8}
    text = (out / "sgd_vs_adam_cnn" / "VERDICT.md").read_text()
    assert "chosen on val at grid seeds 100, scored at fresh seeds 1,2,3,4,5,6,7,8" in text
    assert "cnn_fashion sgd vs adam:" in text and "(n=8 paired seeds" in text
    assert "**Budget.**" in text and "- cnn_fashion adam: at 8 steps val/acc gains" in text
