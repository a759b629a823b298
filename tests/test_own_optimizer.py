"""README "Benchmark your own optimizer", end to end: a folder of configs (and one small
optimizer module) outside the suite, added with hydra.searchpath, run through the real
entry point and reported as rows of their own."""

from __future__ import annotations

import os

import pandas as pd

from suite import record
from suite.report.__main__ import main as report_main
from tests.conftest import run_suite

MY_NADAM = """\
# my_nadam: torch.optim.NAdam with decoupled weight decay (NAdamW)
_entry_:
  impl: torch
  family: nadam
_target_: torch.optim.NAdam
_partial_: true
lr: 0.002
weight_decay: 0.01
decoupled_weight_decay: true
"""

MY_SIGN_SGD = """\
# my_signsgd: my own class, importable on PYTHONPATH
_target_: my_optim.SignSGD
_partial_: true
lr: 0.01
"""

MY_OPTIM_PY = '''\
import torch


class SignSGD(torch.optim.Optimizer):
    """p <- p - lr * sign(g)"""

    def __init__(self, params, lr=0.01, weight_decay=0.0):
        if not lr > 0:
            raise ValueError(f"invalid lr: {lr}")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])
'''


def test_own_optimizers_from_a_searchpath_folder_reach_the_report(tmp_path):
    mine = tmp_path / "my_optimizers"
    (mine / "optimizer").mkdir(parents=True)
    (mine / "optimizer" / "my_nadam.yaml").write_text(MY_NADAM)
    (mine / "optimizer" / "my_signsgd.yaml").write_text(MY_SIGN_SGD)
    (mine / "my_optim.py").write_text(MY_OPTIM_PY)
    runs = tmp_path / "runs"
    run_suite(
        "task=toy",
        "optimizer=my_nadam,my_signsgd",
        f"hydra.searchpath=[file://{mine}]",
        "seed=0",
        "steps=10",
        "logger=none",
        "progress=none",
        "threads=1",
        f"hydra.sweep.dir={runs}",
        multirun=True,
        env={"PYTHONPATH": os.pathsep.join([str(mine), os.environ.get("PYTHONPATH", "")])},
    )
    summaries = {s["optimizer"]: s for s in map(record.read_summary, runs.glob("*/"))}
    assert summaries["my_nadam"]["optimizer_class"] == "torch.optim.nadam.NAdam"
    assert summaries["my_nadam"]["family"] == "nadam" and summaries["my_nadam"]["impl"] == "torch"
    assert summaries["my_signsgd"]["optimizer_class"] == "my_optim.SignSGD"
    assert summaries["my_signsgd"]["impl"] == "my_optim"
    assert summaries["my_signsgd"]["family"] == "custom"
    assert summaries["my_signsgd"]["state_bits"] is None  # it keeps no state: none measured

    out = tmp_path / "report"
    assert report_main([str(runs), "--out", str(out)]) == 0
    rows = pd.read_csv(out / "convergence.csv")
    assert set(rows["optimizer"]) == {"my_nadam", "my_signsgd"}
    assert (rows["task"] == "toy").all() and (rows["n"] == 1).all()
    assert "my_nadam" in (out / "report.md").read_text()
