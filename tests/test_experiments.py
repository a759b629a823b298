"""Paper-style verdicts on records made here with known numbers: chosen on val, told on test."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest

from suite.report.compute import separability
from suite.report.compute.aggregate import aggregate
from suite.report.compute.grid_edges import axis_edge
from suite.report.documents.chosen import main as chosen_main
from suite.report.documents.experiments import (
    decoupled_wd,
    main,
    select_on_val,
    sgd_vs_adam,
    state_8bit,
)
from suite.report.present.plots.curves import heatmap_figures
from suite.report.read.collect import collect
from tests.test_report import CNN, TEST_OFFSET, make_run

LRS, WDS = (1e-3, 1e-2), (1e-4, 1e-3, 1e-2)


def _ok(root):
    runs = collect([root]).runs
    return runs[runs["status"] == "ok"]


def _cnn_run(root, i, opt, seed, hparams, best, final=None, train_m=1.0, **extra):
    """One cnn_digits record ``r<i>`` whose best val/acc is ``best`` (final: the same)."""
    final = best if final is None else final
    make_run(root, f"r{i}", task="cnn_digits", optimizer=opt, seed=seed, hparams=hparams,
             target=CNN, best=best, final=final, train_m=train_m, **extra)  # fmt: skip


def _grid(root, acc, lrs, wds, seeds, default=0.80):
    """An lr x wd grid of Adam and AdamW records; ``acc``: (opt, lr, wd) -> best val/acc."""
    for i, (opt, lr, wd, seed) in enumerate(itertools.product(("adam", "adamw"), lrs, wds, seeds)):
        _cnn_run(
            root,
            i,
            opt,
            seed,
            {"lr": lr, "weight_decay": wd},
            acc.get((opt, lr, wd), default) + 0.001 * seed,
        )


def test_decoupled_wd_finds_best_cells_and_separability(tmp_path):
    # Adam: the best wd moves with lr (diagonal); AdamW: wd 1e-3 is best at every lr.
    acc = {
        ("adam", 1e-3, 1e-2): 0.90,
        ("adam", 1e-2, 1e-4): 0.91,
        ("adamw", 1e-3, 1e-3): 0.95,
        ("adamw", 1e-2, 1e-3): 0.96,
    }
    _grid(tmp_path, acc, LRS, WDS, (0, 1, 2))
    text = decoupled_wd(_ok(tmp_path))
    assert "adam: selected lr=0.01, weight_decay=0.0001" in text
    assert "adamw: selected lr=0.01, weight_decay=0.001" in text
    assert f"test error {1 - (0.96 + 0.001 + TEST_OFFSET):.4f}" in text  # AdamW's cell, on test
    assert "A positive weight decay near-best at every lr: adam {}; adamw {0.001}." in text
    # lr 0.01 is the grid's largest and wd 1e-4 its smallest (> 0): not drawn, numbers stay
    assert "Verdict not drawn" in text
    edges = [line for line in text.splitlines() if "edge of the" in line]
    assert edges == [
        "- adam: selected lr 0.01 is the top edge of the lr grid {0.001, 0.01}; "
        "extend it to {0.001, 0.01, 0.1}",
        "- adam: selected weight_decay 0.0001 is the bottom edge of the weight_decay grid "
        "{0.0001, 0.001, 0.01}; extend it to {1e-05, 0.0001, 0.001, 0.01}",
        "- adamw: selected lr 0.01 is the top edge of the lr grid {0.001, 0.01}; "
        "extend it to {0.001, 0.01, 0.1}",
    ]
    assert "Separability: agrees" not in text
    assert "AdamW vs Adam + L2: inconclusive" in text  # 3 seeds: smallest p 0.25


def test_decoupled_wd_judges_when_the_best_lr_is_inside_the_grid(tmp_path):
    lrs, wds = (1e-4, 1e-3, 1e-2), (0, 1e-4, 1e-2, 1e-1)
    acc = {("adam", 1e-3, 1e-2): 0.90, ("adam", 1e-4, 1e-4): 0.89, ("adamw", 1e-3, 1e-4): 0.95}
    _grid(tmp_path, acc, lrs, wds, range(6))
    text = decoupled_wd(_ok(tmp_path))
    assert "Verdict not drawn" not in text and "edge of the" not in text
    assert "Separability: agrees" in text and "AdamW is better, as in the paper" in text
    assert "Both select weight decay 0" not in text
    assert "AdamW vs Adam + L2: better, effect test error +0.05" in text


def test_a_selected_wd_on_the_open_top_edge_withholds_the_verdict_in_one_line(tmp_path):
    """Both lrs inside; AdamW's best wd is the grid's largest (an open edge), Adam's is 0 (a
    closed end: nothing lies below): only AdamW's wd is named, with the grid to extend to."""
    lrs, wds = (1e-3, 3e-3, 1e-2), (0, 1e-2, 1e-1, 1)
    _grid(tmp_path, {("adam", 3e-3, 0): 0.90, ("adamw", 3e-3, 1): 0.92}, lrs, wds, (0, 1))
    text = decoupled_wd(_ok(tmp_path))
    assert "adam: selected lr=0.003, weight_decay=0 " in text
    assert "adamw: selected lr=0.003, weight_decay=1 " in text
    assert "Verdict not drawn" in text and "**Agreement.**" not in text
    edges = [line for line in text.splitlines() if "edge of the" in line]
    assert edges == [
        "- adamw: selected weight_decay 1 is the top edge of the weight_decay grid "
        "{0, 0.01, 0.1, 1}; extend it to {0, 0.01, 0.1, 1, 10}"
    ]


def test_axis_edges_open_and_closed_ends():
    assert axis_edge("o", "lr", [3e-3, 1e-2, 3e-2], 1e-2) is None
    top = axis_edge("o", "lr", [3e-3, 1e-2, 3e-2, 1e-2], 3e-2)
    assert (top.side, top.extended) == ("top", (3e-3, 1e-2, 3e-2, 3e-2 * 3))
    low = axis_edge("o", "lr", [3e-3, 1e-2, 3e-2], 3e-3)
    assert low.side == "bottom" and low.extended[0] == 3e-3 / (1e-2 / 3e-3)
    assert axis_edge("o", "weight_decay", [0, 1e-2, 1e-1], 0) is None  # closed: nothing below 0
    assert axis_edge("o", "weight_decay", [0, 1e-2], 1e-2).extended == (0, 1e-2, 0.1)
    assert axis_edge("o", "lr", [1e-3], 1e-3) is None  # not swept: no edge


def test_the_two_optimizers_heatmaps_share_one_colour_scale(tmp_path):
    """AdamW's grid spans 0.80-0.95, Adam's 0.80-0.90: both images use vmin 0.80, vmax 0.95
    (plus the seed offset), so one colour means one accuracy in both."""
    acc = {("adam", 1e-3, 1e-2): 0.90, ("adamw", 1e-3, 0): 0.95, ("adamw", 1e-2, 1e-2): 0.85}
    _grid(tmp_path, acc, (1e-3, 1e-2), (0, 1e-2), (0, 1))
    figures = dict(heatmap_figures(aggregate(collect([tmp_path]))))
    assert sorted(figures) == ["heatmap_cnn_digits_adam", "heatmap_cnn_digits_adamw"]
    norms = {name: fig.axes[0].images[0].norm for name, fig in figures.items()}
    for norm in norms.values():
        assert norm.vmin == pytest.approx(0.8005) and norm.vmax == pytest.approx(0.9505)
    cells = {n: f.axes[0].images[0].get_array() for n, f in figures.items()}
    assert cells["heatmap_cnn_digits_adam"].max() == pytest.approx(0.9005)  # its own max is lower


@pytest.mark.parametrize("base", ["adamw", "torch_adamw_fused"])  # in-house; the tier's AdamW
def test_state_8bit_reports_parity_and_savings(tmp_path, base):
    for i, (opt, seed) in enumerate(itertools.product((base, "adamw8bit"), (0, 1, 2))):
        state = 200 if opt.endswith("8bit") else 800
        _cnn_run(tmp_path, i, opt, seed, {"lr": 1e-3}, 0.9 + 0.01 * seed, final=0.9,
                 train_m=0.95, state_bytes=state, n_params=100)  # fmt: skip
    text = state_8bit(_ok(tmp_path))
    assert "state 2.000 B/param" in text and "state 8.000 B/param" in text
    assert "Equivalent within margin in 1 of 1 comparisons" in text
    assert f"cnn_digits adamw8bit vs {base}: equivalent within margin" in text and "±0.005" in text
    assert "state memory 75%-75% less" in text


SGD_VS_ADAM = {  # (optimizer, lr) -> best val/acc: each best lr inside its grid
    ("sgd", 1e-3): 0.90,
    ("sgd", 1e-2): 0.97,
    ("sgd", 1e-1): 0.92,
    ("adam", 1e-4): 0.88,
    ("adam", 1e-3): 0.93,
    ("adam", 1e-2): 0.85,
}


def test_sgd_vs_adam_tunes_lr_per_optimizer(tmp_path):
    for i, ((opt, lr), seed) in enumerate(itertools.product(SGD_VS_ADAM, range(6))):
        _cnn_run(tmp_path, i, opt, seed, {"lr": lr}, SGD_VS_ADAM[opt, lr] + 0.002 * seed)
    text = sgd_vs_adam(_ok(tmp_path))
    assert f"cnn_digits sgd (lr=0.01): test error {1 - (0.975 + TEST_OFFSET):.4f}" in text
    assert f"cnn_digits adam (lr=0.001): test error {1 - (0.935 + TEST_OFFSET):.4f}" in text
    assert "SGD better in 1, worse in 0" in text and "agrees with the paper" in text
    assert "Holm-adjusted" in text and "Verdict not drawn" not in text


def test_sgd_vs_adam_on_a_grid_edge_is_not_drawn(tmp_path):
    """SGD's best lr is its grid's largest: the paper extends such a grid, so no agreement."""
    edge = {k: v for k, v in SGD_VS_ADAM.items() if k != ("sgd", 1e-1)}
    for i, ((opt, lr), seed) in enumerate(itertools.product(edge, range(6))):
        _cnn_run(tmp_path, i, opt, seed, {"lr": lr}, edge[opt, lr] + 0.002 * seed)
    text = sgd_vs_adam(_ok(tmp_path))
    assert "Verdict not drawn" in text and "**Agreement.**" not in text
    assert "- sgd: selected lr 0.01 is the top edge of the lr grid {0.001, 0.01}" in text


def _grid_then_fresh(root, fresh_acc):
    """A grid at seeds 100, 101 and fresh seeds 1-6 at each optimizer's lr in ``fresh_acc``
    ((optimizer, lr) -> best val/acc at the fresh seeds)."""
    grid, fresh = root / "grid", root / "fresh"
    for i, ((opt, lr), seed) in enumerate(itertools.product(SGD_VS_ADAM, (100, 101))):
        _cnn_run(grid, i, opt, seed, {"lr": lr}, SGD_VS_ADAM[opt, lr])
    for i, (((opt, lr), acc), seed) in enumerate(itertools.product(fresh_acc.items(), range(1, 7))):
        _cnn_run(fresh, i, opt, seed, {"lr": lr}, acc + 0.002 * seed)
    return grid, fresh


def test_grid_chooses_and_fresh_seeds_tell(tmp_path, capsys):
    """Chosen on the grid (sgd lr 1e-2, adam 1e-3); scored only on the fresh runs at those
    lrs, whose accuracies differ from the grid's and reverse the order: the fresh figures and
    seeds are the ones reported. Fresh runs at an lr the grid did not choose are not read."""
    chosen = {("sgd", 1e-2): 0.90, ("adam", 1e-3): 0.95}
    grid, fresh = _grid_then_fresh(tmp_path, {**chosen, ("sgd", 1e-1): 0.99})
    out = tmp_path / "out"
    assert main(["sgd_vs_adam", str(grid), "--fresh", str(fresh), "--out", str(out)]) == 0
    text = (out / "VERDICT.md").read_text()
    assert "chosen on val at grid seeds 100,101, scored at fresh seeds 1,2,3,4,5,6" in text
    assert f"cnn_digits sgd (lr=0.01): test error {1 - (0.907 + TEST_OFFSET):.4f}" in text
    assert "(n=6)" in text and "SGD better in 0, worse in 1" in text
    assert "cnn_digits sgd vs adam: worse" in text
    assert (out / "report.md").is_file() and "Not scored" not in text
    make_run(fresh, "lost", task="cnn_digits", optimizer="sgd", seed=7, hparams={"lr": 1e-2},
             target=CNN, status="diverged")  # fmt: skip
    args = ["sgd_vs_adam", str(grid), "--fresh", str(fresh), "--out", str(out)]
    assert main([*args, "--force"]) == 0
    text = (out / "VERDICT.md").read_text()
    # of 19 sgd runs: 6 in the grid, 13 fresh (6 at lr 1e-2, 6 at 1e-1, the diverged one)
    assert "- cnn_digits sgd: 1 diverged of 19 runs (seeds 7)" in text
    assert "(n=6)" in text


def test_fresh_runs_missing_the_chosen_config_or_reusing_grid_seeds_are_refused(tmp_path, capsys):
    grid, fresh = _grid_then_fresh(tmp_path, {("sgd", 1e-1): 0.9, ("adam", 1e-3): 0.9})
    out = tmp_path / "out"
    assert main(["sgd_vs_adam", str(grid), "--fresh", str(fresh), "--out", str(out)]) == 1
    assert "no fresh-seed runs of cnn_digits sgd at lr=0.01" in capsys.readouterr().err
    assert not out.exists()  # refused before any work is written
    _cnn_run(fresh, 99, "sgd", 100, {"lr": 1e-2}, 0.9)
    _cnn_run(fresh, 98, "adam", 1, {"lr": 1e-3}, 0.9)
    assert main(["sgd_vs_adam", str(grid), "--fresh", str(fresh), "--out", str(out)]) == 1
    assert "fresh seeds [100] also ran in the grid that chose" in capsys.readouterr().err


def test_chosen_prints_the_grids_val_choice_as_overrides(tmp_path, capsys):
    """What `make exp-sgd-vs-adam-cnn` passes to its fresh-seed stage: the lr the grid chose
    on val, as a float that reads back exactly; a grid of two optimizers, or a varied value
    that is not a number, is refused in one line."""
    grid, _ = _grid_then_fresh(tmp_path, {})
    _cnn_run(tmp_path / "sgd", 0, "sgd", 0, {"lr": 1 / 3}, 0.9)
    _cnn_run(tmp_path / "sgd", 1, "sgd", 0, {"lr": 0.1}, 0.8)
    assert chosen_main([str(tmp_path / "sgd")]) == 0
    assert capsys.readouterr().out.strip() == "optimizer.lr=0.3333333333333333"
    assert chosen_main([str(grid)]) == 1
    assert "these runs hold optimizers ['adam', 'sgd']" in capsys.readouterr().err
    betas = tmp_path / "betas"
    _cnn_run(betas, 0, "adam", 0, {"betas": [0.9, 0.99]}, 0.9)
    _cnn_run(betas, 1, "adam", 0, {"betas": [0.9, 0.999]}, 0.8)
    assert chosen_main([str(betas)]) == 1
    assert "betas='[0.9, 0.99]' is not a finite number" in capsys.readouterr().err
    odd = tmp_path / "odd"  # a name read from a record must not become two overrides
    _cnn_run(odd, 0, "adam", 0, {"lr x=1": 0.1}, 0.9)
    _cnn_run(odd, 1, "adam", 0, {"lr x=1": 0.2}, 0.8)
    assert chosen_main([str(odd)]) == 1
    assert "'lr x=1' is not a hyperparameter name" in capsys.readouterr().err


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


def test_selection_reads_val_only_and_ignores_corrupted_test_metrics(tmp_path):
    """Config lr=0.1 is best on val, lr=0.01 best on test: val decides, and rewriting every
    test metric (to favour the other config) changes nothing that is chosen."""
    for i, (lr, seed) in enumerate(itertools.product((0.1, 0.01), (0, 1))):
        val = 0.9 if lr == 0.1 else 0.8
        test = 0.7 if lr == 0.1 else 0.95
        make_run(
            tmp_path,
            f"r{i}",
            task="cnn_digits",
            optimizer="sgd",
            seed=seed,
            hparams={"lr": lr},
            target=CNN,
            best=val,
            final=val,
            train_m=1.0,
        )
        summary = tmp_path / f"r{i}" / "summary.json"
        data = json.loads(summary.read_text())
        data["final"]["test/acc"] = data["best"]["test/acc"] = test
        summary.write_text(json.dumps(data))
    runs = _ok(tmp_path)
    chosen = select_on_val(runs)
    assert set(chosen["hp.lr"]) == {0.1} and len(chosen) == 2
    corrupted = runs.assign(final_test=1.0 - runs["final_test"], gap=0.0)
    assert select_on_val(corrupted).index.equals(chosen.index)
    assert "sgd (lr=0.1): test error 0.3000" in sgd_vs_adam(runs)


def test_both_choosing_no_weight_decay_is_said_to_compare_one_update_with_itself(tmp_path):
    """At wd 0 Adam + L2 and AdamW are the same update: equal records, and the verdict must
    not read their test-error 'equivalence' as a finding about decoupling."""
    lrs, wds = (1e-3, 3e-3, 1e-2), (0, 1e-2, 1e-1)
    _grid(tmp_path, {("adam", 3e-3, 0): 0.92, ("adamw", 3e-3, 0): 0.92}, lrs, wds, (0, 1))
    text = decoupled_wd(_ok(tmp_path))
    assert "adam: selected lr=0.003, weight_decay=0 " in text
    assert "adamw: selected lr=0.003, weight_decay=0 " in text
    assert "Both select weight decay 0" in text and "Test error: not informative" in text


def test_near_best_reads_seed_noise_not_the_argmin():
    """Row lr 1e-3: wd 0.1 beats wd 0 by 0.001 on the mean but by -0.02..+0.02 per seed (noise):
    both near-best. Row lr 1e-2: wd 1 is worse by 0.05 at every seed (+-0.002): not."""
    row1 = pd.DataFrame({0.0: [2.00, 2.04, 2.02], 0.1: [2.02, 2.02, 2.017]}, index=[0, 1, 2])
    row2 = pd.DataFrame({0.0: [2.00, 2.01, 2.02], 1.0: [2.05, 2.062, 2.068]}, index=[0, 1, 2])
    assert row1.mean().idxmin() == 0.1  # the argmin says "0.1"; the seeds cannot tell
    assert separability.near_best(row1) == {0.0, 0.1}
    assert separability.near_best(row2) == {0.0}
    assert separability.near_best(row2, margin=0.06) == {0.0, 1.0}  # worse, but within 0.06
    # wd 0 (no decay: one update for both) never separates them
    assert separability.common({1e-3: {0.0, 0.1}, 1e-2: {0.0}}) == set()
    assert separability.common({1e-3: {0.0, 0.1}, 1e-2: {0.0, 0.1, 1.0}}) == {0.1}
    assert separability.agreement({0.1}, {0.1}).startswith("inconclusive: a positive")
    assert separability.agreement(set(), set()).startswith("inconclusive: no positive")
    assert separability.agreement(set(), {0.1}).startswith("agrees")
    assert separability.agreement({0.1}, set()).startswith("does not agree")


def test_runs_at_twice_the_steps_say_whether_the_budget_has_flattened(tmp_path):
    """Fresh seeds 1-6 at 100 steps (seed spread 0.0037); the same configurations at 200 steps
    for seeds 1-3: SGD gains 0.001 there (flat), Adam 0.02 (not). An Adam run of another lr at
    100 steps is not its configuration and is not read."""
    chosen = {("sgd", 1e-2): 0.90, ("adam", 1e-3): 0.95}
    grid, fresh = _grid_then_fresh(tmp_path, chosen)
    _cnn_run(fresh, 50, "adam", 1, {"lr": 1e-2}, 0.5)
    double = tmp_path / "double"
    for i, ((opt, lr), seed) in enumerate(itertools.product(chosen, (1, 2, 3))):
        gain = 0.001 if opt == "sgd" else 0.02
        _cnn_run(double, i, opt, seed, {"lr": lr}, chosen[opt, lr] + 0.002 * seed + gain,
                 steps=200, max_steps=200)  # fmt: skip
    out = tmp_path / "out"
    args = ["sgd_vs_adam", str(grid), "--fresh", str(fresh), "--double", str(double)]
    assert main([*args, "--out", str(out)]) == 0
    budget = (out / "VERDICT.md").read_text().split("**Budget.**")[1]
    assert (
        "- cnn_digits sgd: at 200 steps val/acc gains +0.0010 over 100 (median of seeds 1, 2, 3) "
        "vs seed spread 0.0037 at 100 (n=6): **flattened**" in budget
    )
    assert "- cnn_digits adam: at 200 steps val/acc gains +0.0200" in budget
    assert "(n=6): **NOT flattened: more steps still pay**" in budget
