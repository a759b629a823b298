"""Effective-lr telemetry against a hand computation; events through the loop, the doctor,
and the report's plot."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from suite import record
from suite.optim.registry import REGISTRY
from suite.report.documents.standard import write_report
from suite.runner.telemetry import QUANTILES, Telemetry, flat
from suite.tasks.toy import ToyTask
from suite.train import LoopConfig, train

LR, BETAS, EPS = 1e-2, (0.9, 0.99), 1e-8


def _grads(shape, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(n)]


def _hand_adam(p0, grads):
    """Adam (no weight decay) by hand in float64: (p_{T-1}, p_T, eff_lr at T)."""
    m = torch.zeros_like(p0)
    v = torch.zeros_like(p0)
    p, prev = p0.clone(), None
    for t, g in enumerate(grads, start=1):
        m = BETAS[0] * m + (1 - BETAS[0]) * g
        v = BETAS[1] * v + (1 - BETAS[1]) * g * g
        m_hat, v_hat = m / (1 - BETAS[0] ** t), v / (1 - BETAS[1] ** t)
        prev, p = p, p - LR * m_hat / (v_hat.sqrt() + EPS)
    return prev, p, LR / (v_hat.sqrt() + EPS)


def _observed(name, p0, grads):
    """Step ``name`` through ``grads``, observing the last step with Telemetry."""
    model = nn.Linear(1, 1, bias=False)
    model.weight = nn.Parameter(p0.float().clone())
    opt = REGISTRY[name].build([model.weight], lr=LR, betas=BETAS, eps=EPS, weight_decay=0.0)
    telemetry = Telemetry(model, opt, every=len(grads))
    for step, g in enumerate(grads, start=1):
        model.weight.grad = g.float()
        if telemetry.due(step):
            telemetry.before_step()
        opt.step()
    assert telemetry.due(len(grads))
    return telemetry.after_step(len(grads))["layers"]["weight"]


@pytest.mark.parametrize("name", ["adam", "torch_adam", "adam8bit", "bnb_adam8bit"])
def test_effective_lr_and_update_ratio_match_a_hand_computation(name):
    shape = (64, 64)  # 4096 values: 8-bit state applies
    p0 = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = _grads(shape, 3)
    prev, p, eff = _hand_adam(p0, grads)
    row = _observed(name, p0, grads)
    want = torch.quantile(eff.flatten(), torch.tensor(QUANTILES, dtype=torch.float64)).tolist()
    got = [row[f"eff_lr_p{round(q * 100)}"] for q in QUANTILES]
    ratio = ((p - prev).norm() / prev.norm()).item()
    # 32-bit state: float32 rounding; 8-bit: v is dequantized from one byte per value
    rel = 1e-4 if "8bit" not in name else 0.05
    assert got == pytest.approx(want, rel=rel), name
    assert row["update_ratio"] == pytest.approx(ratio, rel=1e-3 if "8bit" not in name else 0.1)


def test_sgd_has_an_update_ratio_and_no_effective_lr():
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    telemetry = Telemetry(model, opt, every=1)
    before = model.weight.detach().clone()
    model.weight.grad, model.bias.grad = torch.ones(3, 4), torch.ones(3)
    telemetry.before_step()
    opt.step()
    row = telemetry.after_step(1)["layers"]["weight"]
    assert set(row) == {"update_ratio"}
    assert row["update_ratio"] == pytest.approx(
        (0.1 * torch.ones(3, 4)).norm().item() / before.norm().item(), rel=1e-5
    )


def test_loop_logs_telemetry_events_and_states_their_cost(tmp_path):
    out = train(ToyTask(), lambda g: REGISTRY["adamw"].build(g, lr=1e-2),
                LoopConfig(steps=12, log_every=4, telemetry_every=4), tmp_path)  # fmt: skip
    events = [e for e in record.read_jsonl(tmp_path / "metrics.jsonl")]
    tele = [e for e in events if e["event"] == "telemetry"]
    assert [e["step"] for e in tele] == [4, 8, 12]
    assert set(tele[0]["layers"]) == {"weight", "bias"}
    assert all(0 < e["layers"]["weight"]["update_ratio"] < 1 for e in tele)
    assert out["telemetry"]["events"] == 3 and out["telemetry"]["median_cost_s"] > 0
    assert out["telemetry"]["median_step_time_s"] > 0
    w = flat(tele[0])
    assert w["telemetry/weight/eff_lr_p50"] == tele[0]["layers"]["weight"]["eff_lr_p50"]

    # the report draws them
    import json

    summary = {
        "schema": 1, "status": "ok", "task": "toy", "optimizer": "adamw", "impl": "inhouse",
        "family": "adamw", "state_bits": 32, "hparams": {"lr": 1e-2}, "seed": 0,
        "max_steps": 12, "target": {"metric": "test/acc", "value": 0.5, "direction": "max"},
        **{k: v for k, v in out.items() if k not in ("train_seconds", "status")},
        "wall_seconds": 1.0, "error": None,
    }  # fmt: skip
    for key in record.SUMMARY_KEYS:
        summary.setdefault(key, None)
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    write_report([tmp_path], tmp_path / "report", "t", force=False, cmd="test")
    plots = list((tmp_path / "report" / "plots").glob("telemetry_*.png"))
    assert len(plots) == 1 and plots[0].stat().st_size > 10_000
    assert plots[0].name in (tmp_path / "report" / "report.md").read_text()


def test_the_doctor_names_lr_from_an_early_update_ratio(tmp_path):
    # L2 at lr 1e6 multiplies the weights by ~-500 a step: non-finite within a few steps
    out = train(ToyTask(), lambda g: REGISTRY["sgd"].build(g, lr=1e6, momentum=0.9),
                LoopConfig(steps=50, telemetry_every=1), tmp_path, weight_decay=5e-4)  # fmt: skip
    assert out["status"] == "diverged"
    assert "lr is the suspect" in out["diagnosis"] and "update/weight ratio" in out["diagnosis"]
    ratio = float(out["diagnosis"].split("ratio ")[1].split()[0])
    assert math.isfinite(ratio) and ratio > 1e-2


def test_the_doctor_names_a_zero_8bit_second_moment_not_lr(tmp_path, monkeypatch):
    """Issue 21's case through the real loop on real data: fmnist_mlp, 8-bit AdamW at
    lr 6.7e-4, eps 1e-10, with the quantizer as it was before the fix (a positive v could
    round to 0). It diverges; the doctor must blame the zero second moment, not lr.
    With the fix (not patched) the same run trains (tests/test_optim_8bit.py)."""
    from suite.optim import adam8bit
    from suite.tasks import build_task

    monkeypatch.setattr(adam8bit, "keep_positive_", lambda codes, v: None)
    task = build_task("deepobs", dataset="fashion_mnist", arch="mlp", eval_size=500,
                      eval_train_size=500)  # fmt: skip
    hyper = dict(lr=6.734662926351386e-4, eps=1.0370839679370587e-10,
                 betas=(0.9, 0.983342011056718), weight_decay=0.0)  # fmt: skip
    out = train(task, lambda g: REGISTRY["adamw8bit"].build(g, **hyper),
                LoopConfig(steps=80, eval_every=80), tmp_path)  # fmt: skip
    assert out["status"] == "diverged", out["status"]
    assert "second moment decoded to 0" in out["diagnosis"], out["diagnosis"]
    assert "lr is not the cause" in out["diagnosis"] and "lower lr" not in out["diagnosis"]


def test_the_adam_weight_decay_hint_is_added_by_the_runner_not_the_loop():
    from suite.runner.diagnose import with_family_hint

    lr_line = "loss blew up early or kept rising: lower lr 2-10x or add warmup"
    assert with_family_hint(lr_line, "adam", 0.1).endswith(
        "AdamW (decoupled) may be what was meant"
    )
    assert with_family_hint(lr_line, "adamw", 0.1) == lr_line  # decoupled already
    assert with_family_hint(lr_line, "adam", 0.0) == lr_line
    fp16 = "non-finite under fp16: use a GradScaler (on by default) or amp=bf16, or lower lr"
    assert with_family_hint(fp16, "adam", 0.1) == fp16  # not an lr/decay cause
    assert with_family_hint(None, "adam", 0.1) is None


def test_only_the_early_events_are_kept_for_the_checklist():
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    telemetry = Telemetry(model, opt, every=1, early_steps=2)
    for step in (1, 2, 3):
        model.weight.grad, model.bias.grad = torch.ones(3, 4), torch.ones(3)
        telemetry.before_step()
        opt.step()
        telemetry.after_step(step)
    assert [e["step"] for e in telemetry.early] == [1, 2]
    assert len(telemetry.costs) == 3
