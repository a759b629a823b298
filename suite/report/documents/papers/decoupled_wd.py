"""Decoupled weight decay (Loshchilov & Hutter, ICLR 2019): Adam + L2 against AdamW on an lr x wd
grid; separability of lr and wd on val, test error at each one's val choice."""

from __future__ import annotations

import pandas as pd

from suite.report.compute import separability
from suite.report.compute.families import paired_family, test_error
from suite.report.compute.grid_edges import grid_edges
from suite.report.compute.selection import Choose, select_on_val, val_error
from suite.report.compute.verdicts import default_margin
from suite.report.documents.papers import text
from suite.report.read.rows import HP


def decoupled_wd(runs: pd.DataFrame, choose: Choose = select_on_val) -> str:
    lines = text.opening(
        "decoupled weight decay (Loshchilov & Hutter, ICLR 2019)",
        "With Adam + L2 the best weight decay depends on the learning rate (the good "
        "region of the lr x wd grid runs along a diagonal); AdamW decouples them, so its good region "
        "is aligned with the axes (the best wd hardly moves with lr) and it reaches a lower test error.",
    )
    best, near = {}, {}
    margin = default_margin(runs["test_metric"].iloc[0])  # one task, one metric
    for opt in ("adam", "adamw"):
        g = runs[runs["optimizer"] == opt]
        if g.empty:
            lines.append(f"- no {opt} runs")
            continue
        best[opt] = choose(g)
        near[opt] = separability.near_best_per_lr(
            g, val_error(g), f"{HP}lr", f"{HP}weight_decay", margin
        )
        lines.append(
            f"- {opt}: selected {text.config_text(best[opt])} (val error {text.mean_std(val_error(best[opt]))}), "
            f"test error {text.mean_std(test_error(best[opt]))} (n={len(best[opt])}); near-best wd per lr "
            f"on val: {separability.describe(near[opt])}"
        )
    text.fill_measured(
        lines,
        f"task {', '.join(sorted(set(runs['task'])))}, {text.scored_seeds(runs, list(best.values()))}",
    )
    if len(best) == 2:
        (v,) = paired_family([("AdamW vs Adam + L2", best["adamw"], best["adam"])])
        grid = all(
            runs[runs["optimizer"] == o].groupby(f"{HP}lr")[f"{HP}weight_decay"].nunique().max() > 1
            and runs[runs["optimizer"] == o][f"{HP}lr"].nunique() > 1
            for o in best
        )
        edges = [e for o in best for e in grid_edges(runs[runs["optimizer"] == o], best[o], o)]
        lines += ["", "At their val-selected configurations: " + v.line("test error") + ".", ""]
        lines.append(text.family_note(1))
        same = all((best[o][f"{HP}weight_decay"] == 0).all() for o in best)
        if same:  # at wd 0, Adam + L2 and AdamW are one update: the pair is a run with itself
            lines.append(
                "Both select weight decay 0, where Adam + L2 and AdamW are the same update: "
                "the test-error comparison pairs identical runs and says nothing about "
                "decoupling; the grid's rows with weight decay > 0 (separability, heatmaps) do."
            )
        serves = {o: separability.common(near[o]) for o in best}
        if grid:
            lines.append(separability.serving_line(serves, margin))
        lines.append("")
        if edges:
            lines.append(
                "**Verdict not drawn.** A selected value sits on an open edge of its grid, so "
                "the best configuration may lie outside it and neither separability nor test "
                "error can be judged from this grid:"
            )
            lines += ["", *(f"- {e.line()}" for e in edges)]
        else:
            sep = separability.agreement(serves["adam"], serves["adamw"])
            lines.append(
                (
                    f"**Agreement.** Separability: {sep}. "
                    if grid
                    else "**Agreement.** Separability: not assessed (these runs are not an "
                    "lr x wd grid). "
                )
                + "Test error: "
                + (
                    "not informative (both choose weight decay 0)."
                    if same
                    else "AdamW is better, as in the paper."
                    if v.word == "better"
                    else f"{v.word} (the paper's gap appears on CIFAR-10 and ImageNet with "
                    "schedules of hundreds of epochs)."
                )
            )
    return "\n".join(lines) + "\n"
