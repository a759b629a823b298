"""Paper-style comparisons: the standard report plus a short Markdown verdict.

    python -m suite.report.documents.experiments <decoupled_wd|state_8bit|sgd_vs_adam> <runs>... --out DIR
        [--fresh <runs>...]

Each verdict says what the paper found, what we measured (means, stds, seeds) and
whether the two agree. Comparisons go through :mod:`suite.report.compute.claims`: paired by seed
on test error at the val-selected configurations, the family being *the comparisons of
one experiment* (Holm over them), effects with a bootstrap 95 % interval, and
"equivalent" only by TOST at a margin stated before the data (0.5 point of accuracy or
0.01 nats, :func:`suite.report.compute.verdicts.default_margin`), else "inconclusive" with the
seeds that would decide it. A grid's verdict is not drawn while a selected lr or wd sits
on an open edge of its grid (:mod:`suite.report.compute.grid_edges`): one line per edge
names the optimizer, the value, the edge and the grid to extend to. Like the rest of the
report it reads run records only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from suite.record import RecordError, atomic_write_text
from suite.report.compute import separability
from suite.report.compute.families import paired_family, test_error
from suite.report.compute.grid_edges import grid_edges
from suite.report.compute.selection import Choose, at_fresh_seeds, select_on_val, val_error
from suite.report.compute.verdicts import default_margin
from suite.report.documents.flatness import doubled_lines
from suite.report.documents.standard import write_report
from suite.report.documents.verdict_text import (
    BUDGET,
    MEASURED,
    PROTOCOL,
    config_text,
    family_note,
    fill_measured,
    mean_std,
    not_scored,
    scored_seeds,
)
from suite.report.read.collect import collect, completed_runs
from suite.report.read.rows import HP


def decoupled_wd(runs: pd.DataFrame, choose: Choose = select_on_val) -> str:
    lines = [
        "## Verdict: decoupled weight decay (Loshchilov & Hutter, ICLR 2019)",
        "",
        "**Paper.** With Adam + L2 the best weight decay depends on the learning rate (the good "
        "region of the lr x wd grid runs along a diagonal); AdamW decouples them, so its good region "
        "is aligned with the axes (the best wd hardly moves with lr) and it reaches a lower test error.",
        "",
        PROTOCOL,
        "",
        MEASURED,
        "",
    ]
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
            f"- {opt}: selected {config_text(best[opt])} (val error {mean_std(val_error(best[opt]))}), "
            f"test error {mean_std(test_error(best[opt]))} (n={len(best[opt])}); near-best wd per lr "
            f"on val: {separability.describe(near[opt])}"
        )
    fill_measured(
        lines,
        f"task {', '.join(sorted(set(runs['task'])))}, {scored_seeds(runs, list(best.values()))}",
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
        lines.append(family_note(1))
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


def state_8bit(runs: pd.DataFrame, choose: Choose = select_on_val) -> str:
    lines = [
        "## Verdict: 8-bit optimizer state (Dettmers et al., ICLR 2022)",
        "",
        "**Paper.** Block-wise 8-bit Adam keeps the accuracy of 32-bit Adam while using about 75% "
        "less optimizer-state memory.",
        "",
        PROTOCOL,
        "",
        MEASURED,
        "",
    ]
    pairs = [  # (32-bit, 8-bit); torch_adamw_fused: the CPU tier's 32-bit AdamW
        ("torch_adamw_fused", "adamw8bit"),
        ("torch_adamw_fused", "bnb_adamw8bit"),
        ("adamw", "adamw8bit"),
        ("torch_adamw", "bnb_adamw8bit"),
        ("adam", "adam8bit"),
        ("adam", "bnb_adam8bit"),
        ("adamw8bit", "bnb_adamw8bit"),
    ]
    items, savings = [], []
    for task in sorted(set(runs["task"])):
        t = runs[runs["task"] == task]
        chosen = {o: choose(t[t["optimizer"] == o]) for o in set(t["optimizer"])}
        lines.append(f"*{task}* ({t['test_metric'].iloc[0]} as an error)")
        for opt in sorted(chosen):
            lines.append(
                f"- {opt}: {config_text(chosen[opt])}; test error {mean_std(test_error(chosen[opt]))} "
                f"(n={len(chosen[opt])}), state {chosen[opt]['state_bytes_per_param'].mean():.3f} "
                "B/param"
            )
        for base, cand in pairs:
            if base not in chosen or cand not in chosen:
                continue
            items.append((f"{task} {cand} vs {base}", chosen[cand], chosen[base]))
            if not base.endswith("8bit"):
                b = chosen[base]["state_bytes_per_param"].mean()
                saved = 1 - chosen[cand]["state_bytes_per_param"].mean() / b
                savings.append(saved)
        lines.append("")
    fill_measured(lines, scored_seeds(runs, [c for _, c, _ in items]))
    verdicts = paired_family(items)
    if verdicts:
        lines += [f"- {v.line('test error')}" for v in verdicts] + ["", family_note(len(items))]
        words = [v.word for v in verdicts]
        lines += [
            "",
            f"**Agreement.** Equivalent within margin in {words.count('equivalent within margin')}"
            f" of {len(words)} comparisons; 8-bit better in {words.count('better')}, worse in "
            f"{words.count('worse')}, inconclusive in {words.count('inconclusive')}"
            + (
                f"; state memory {min(savings):.0%}-{max(savings):.0%} less (the paper's ~75% "
                "holds where most parameters sit in tensors of >= 4096 values)."
                if savings
                else "."
            ),
        ]
    return "\n".join(lines) + "\n"


SGDS = ("sgd", "sgd_nesterov")  # heavy-ball or Nesterov momentum: the paper's SGD and HB
ADAPTIVE = ("adam", "adamw", "torch_adamw_fused")


def sgd_vs_adam(runs: pd.DataFrame, choose: Choose = select_on_val) -> str:
    lines = [
        "## Verdict: SGD vs adaptive methods (Wilson et al., NeurIPS 2017)",
        "",
        "**Paper.** Tuned SGD with momentum generalizes better than tuned adaptive methods (higher "
        "test accuracy, smaller train-test gap), even when the adaptive methods fit the training "
        "set as well or faster.",
        "",
        PROTOCOL,
        "",
        MEASURED,
        "",
    ]
    items, edges, scored = [], [], []
    for task in sorted(set(runs["task"])):
        t = runs[runs["task"] == task]
        tuned = {}
        for opt in (*SGDS, *ADAPTIVE):
            g = t[t["optimizer"] == opt]
            if g.empty:
                continue
            edges += grid_edges(g, select_on_val(g), opt)
            sel = tuned[opt] = choose(g)
            scored.append(sel)
            lines.append(
                f"- {task} {opt} ({config_text(sel)}): test error {mean_std(test_error(sel))}, "
                f"train-test gap {sel['gap'].mean():+.4f} ({t['test_metric'].iloc[0][5:]}), "
                f"final train loss {sel['final_train_loss'].mean():.4f} (n={len(sel)})"
            )
        items += [
            (f"{task} {sgd} vs {adaptive}", tuned[sgd], tuned[adaptive])
            for sgd in SGDS
            for adaptive in ADAPTIVE
            if sgd in tuned and adaptive in tuned
        ]
    fill_measured(lines, scored_seeds(runs, scored))
    verdicts = paired_family(items)
    if verdicts:
        words = [v.word for v in verdicts]
        wins, losses = words.count("better"), words.count("worse")
        lines += [f"- {v.line('test error')}" for v in verdicts]
        lines += ["", family_note(len(items)), ""]
        if edges:
            lines += [
                "**Verdict not drawn.** A selected lr sits on an open edge of its grid, so the "
                "best lr may lie outside it (the paper extends such a grid):",
                "",
                *(f"- {e.line()}" for e in edges),
            ]
            return "\n".join(lines) + "\n"
        lines.append(
            f"**Agreement.** SGD better in {wins}, worse in {losses}, equivalent within margin in "
            f"{words.count('equivalent within margin')}, inconclusive in "
            f"{words.count('inconclusive')} of {len(words)} comparisons. "
            + (
                "This agrees with the paper."
                if wins and not losses
                else "Undecided at these seeds: neither the paper's effect nor its absence is "
                "shown (see the seeds each comparison would need)."
                if wins == losses == 0 and "equivalent within margin" not in words
                else "The paper's effect is not reproduced at this budget; its gaps are a few "
                "points of CIFAR-10 accuracy after hundreds of epochs."
            )
        )
    return "\n".join(lines) + "\n"


VERDICTS = {"decoupled_wd": decoupled_wd, "state_8bit": state_8bit, "sgd_vs_adam": sgd_vs_adam}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.report.documents.experiments")
    parser.add_argument("experiment", choices=sorted(VERDICTS))
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument(
        "--fresh",
        nargs="+",
        type=Path,
        default=[],
        help="runs at fresh seeds of the configurations chosen on <runs>: the verdict scores these",
    )
    parser.add_argument(
        "--double",
        nargs="+",
        type=Path,
        default=[],
        help="runs of chosen configurations at twice the steps: has the budget flattened?",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        runs = completed_runs(args.runs)
        fresh = completed_runs(args.fresh) if args.fresh else None
        choose = select_on_val if fresh is None else at_fresh_seeds(fresh)
        text = VERDICTS[args.experiment](runs, choose) + not_scored(
            collect([*args.runs, *args.fresh])  # the runs' problems: what could not be scored
        )
        if args.double:
            scored = runs if fresh is None else fresh
            text += BUDGET + "\n".join(doubled_lines(scored, completed_runs(args.double))) + "\n"
        write_report(
            [*args.runs, *args.fresh],
            args.out,
            f"optbench experiment: {args.experiment}",
            args.force,
            "python -m suite.report.documents.experiments "
            + " ".join(sys.argv[1:] if argv is None else argv),
        )
    except (RecordError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    atomic_write_text(args.out / "VERDICT.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
