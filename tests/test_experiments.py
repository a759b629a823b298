"""Paper-style verdicts on records made here with known numbers."""

from __future__ import annotations

import itertools

from suite.report.collect import collect
from suite.report.experiments import decoupled_wd, main, sgd_vs_adam, state_8bit
from tests.test_report import CNN, make_run

LRS, WDS = (1e-3, 1e-2), (1e-4, 1e-3, 1e-2)


def _ok(root):
    runs = collect([root]).runs
    return runs[runs["status"] == "ok"]


def test_decoupled_wd_finds_best_cells_and_separability(tmp_path):
    # Adam: the best wd moves with lr (diagonal); AdamW: wd 1e-3 is best at every lr.
    acc = {
        ("adam", 1e-3, 1e-2): 0.90,
        ("adam", 1e-2, 1e-4): 0.91,
        ("adamw", 1e-3, 1e-3): 0.95,
        ("adamw", 1e-2, 1e-3): 0.96,
    }
    for i, (opt, lr, wd, seed) in enumerate(
        itertools.product(("adam", "adamw"), LRS, WDS, (0, 1, 2))
    ):
        best = acc.get((opt, lr, wd), 0.80) + 0.001 * seed
        make_run(
            tmp_path,
            f"r{i}",
            task="cnn_digits",
            optimizer=opt,
            seed=seed,
            hparams={"lr": lr, "weight_decay": wd},
            target=CNN,
            best=best,
            final=best,
            train_m=1.0,
        )
    text = decoupled_wd(_ok(tmp_path))
    assert "adam: best cell lr=0.01, wd=0.0001" in text
    assert "adamw: best cell lr=0.01, wd=0.001" in text
    assert "changes 1 time(s) across the lr axis for Adam and 0 time(s) for AdamW" in text
    assert "Separability: agrees" in text and "AdamW is significantly better" in text


def test_state_8bit_reports_parity_and_savings(tmp_path):
    for i, (opt, seed) in enumerate(itertools.product(("adamw", "adamw8bit"), (0, 1, 2))):
        bits8 = opt.endswith("8bit")
        make_run(
            tmp_path,
            f"r{i}",
            task="cnn_digits",
            optimizer=opt,
            seed=seed,
            hparams={"lr": 1e-3},
            target=CNN,
            best=0.9 + 0.01 * seed,
            final=0.9,
            train_m=0.95,
            state_bytes=200 if bits8 else 800,
            n_params=100,
        )
    text = state_8bit(_ok(tmp_path))
    assert "2.000 vs 8.000 B/param (75% less)" in text
    assert "Accuracy parity: 1/1 comparisons show no significant difference" in text


def test_sgd_vs_adam_tunes_lr_per_optimizer(tmp_path):
    best = {("sgd", 1e-2): 0.97, ("sgd", 1e-3): 0.90, ("adam", 1e-3): 0.93, ("adam", 1e-2): 0.85}
    for i, ((opt, lr), seed) in enumerate(itertools.product(best, (0, 1, 2))):
        b = best[opt, lr] + 0.002 * seed
        make_run(
            tmp_path,
            f"r{i}",
            task="cnn_digits",
            optimizer=opt,
            seed=seed,
            hparams={"lr": lr},
            target=CNN,
            best=b,
            final=b,
            train_m=1.0,
        )
    text = sgd_vs_adam(_ok(tmp_path))
    assert "cnn_digits sgd (lr 0.01): test 0.9720" in text
    assert "cnn_digits adam (lr 0.001): test 0.9320" in text
    assert "SGD significantly better in 1, worse in 0" in text and "agrees with the paper" in text


def test_cli_writes_report_and_verdict_and_refuses_overwrite(tmp_path, capsys):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(
            runs,
            f"s{seed}",
            task="cnn_digits",
            optimizer="adamw",
            seed=seed,
            hparams={"lr": 1e-3},
            target=CNN,
            best=0.9,
            final=0.9,
            train_m=0.95,
        )
    out = tmp_path / "out"
    assert main(["state_8bit", str(runs), "--out", str(out)]) == 0
    assert (out / "VERDICT.md").is_file() and (out / "report.md").is_file()
    assert main(["state_8bit", str(runs), "--out", str(out)]) == 1
    assert "already holds a report" in capsys.readouterr().err
