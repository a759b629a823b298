"""Paper-style comparisons: the standard report plus a short Markdown verdict.

    python -m suite.report.experiments <decoupled_wd|state_8bit|sgd_vs_adam> <runs>... --out DIR

Each verdict says what the paper found, what we measured (means, stds, seeds,
Welch's p) and whether the two agree. Like the rest of the report it reads run
records only.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from suite.record import RecordError
from suite.report.__main__ import write_report
from suite.report.collect import HP, collect
from suite.report.stats import verdict, welch


def _error(df: pd.DataFrame) -> pd.Series:
    """The target metric as an error to minimise (1 - accuracy, or the loss itself)."""
    return np.where(df["target_direction"] == "max", 1.0 - df["best_target"], df["best_target"])


def _seeds(df: pd.DataFrame) -> str:
    return ",".join(str(s) for s in sorted(set(df["seed"])))


def decoupled_wd(runs: pd.DataFrame) -> str:
    runs = runs.assign(error=_error(runs))
    lines = [
        "## Verdict: decoupled weight decay (Loshchilov & Hutter, ICLR 2019)",
        "",
        "**Paper.** With Adam + L2 the best weight decay depends on the learning rate (the good "
        "region of the lr x wd grid runs along a diagonal); AdamW decouples them, so its good region "
        "is aligned with the axes (the best wd hardly moves with lr) and it reaches a lower test error.",
        "",
        f"**Measured** (task {', '.join(sorted(set(runs['task'])))}, seeds {_seeds(runs)}; test "
        "error = 1 - best test accuracy):",
        "",
    ]
    best = {}
    moves = {}
    for opt in ("adam", "adamw"):
        g = runs[runs["optimizer"] == opt]
        if g.empty:
            lines.append(f"- no {opt} runs")
            continue
        grid = g.groupby([f"{HP}lr", f"{HP}weight_decay"])["error"].mean().unstack()
        lr_best, wd_best = grid.stack().idxmin()
        best[opt] = g[(g[f"{HP}lr"] == lr_best) & (g[f"{HP}weight_decay"] == wd_best)]
        # Which wd is best at each lr: constant for a separable (axis-aligned) region.
        per_lr = grid.idxmin(axis=1)
        moves[opt] = per_lr.nunique()
        lines.append(
            f"- {opt}: best cell lr={lr_best:g}, wd={wd_best:g}, test error "
            f"{best[opt]['error'].mean():.4f} ± {best[opt]['error'].std():.2g} (n={len(best[opt])}); "
            "best wd per lr: " + ", ".join(f"lr {lr:g} -> {wd:g}" for lr, wd in per_lr.items())
        )
    if len(best) == 2:
        c = welch(best["adamw"]["error"], best["adam"]["error"])
        p = f"p = {c.p:.3g}" if not math.isnan(c.p) else c.result
        lines += [
            "",
            f"Best AdamW cell vs best Adam cell: error difference {c.diff:+.4f} (Welch {p}, {c.result}).",
            f"The best wd changes {moves['adam'] - 1} time(s) across the lr axis for Adam and "
            f"{moves['adamw'] - 1} time(s) for AdamW.",
            "",
        ]
        separates = moves["adamw"] <= moves["adam"]
        better = c.diff < 0 and c.significant
        lines.append(
            f"**Agreement.** Separability: {'agrees' if separates else 'does not agree'} with the paper "
            f"(AdamW's best wd moves {'no more' if separates else 'more'} than Adam's). Test error: "
            + (
                "AdamW is significantly better, as in the paper."
                if better
                else "no significant advantage for AdamW at this CPU scale (the paper's gap appears on "
                "CIFAR-10/ImageNet with long schedules)."
            )
        )
    return "\n".join(lines) + "\n"


def state_8bit(runs: pd.DataFrame) -> str:
    lines = [
        "## Verdict: 8-bit optimizer state (Dettmers et al., ICLR 2022)",
        "",
        "**Paper.** Block-wise 8-bit Adam keeps the accuracy of 32-bit Adam while using about 75% less "
        "optimizer-state memory.",
        "",
        f"**Measured** (seeds {_seeds(runs)}):",
        "",
    ]
    pairs = [
        ("adamw", "adamw8bit"),
        ("torch_adamw", "bnb_adamw8bit"),
        ("adam", "adam8bit"),
        ("adam", "bnb_adam8bit"),
        ("adamw8bit", "bnb_adamw8bit"),
    ]
    parity, savings = [], []
    for task in sorted(set(runs["task"])):
        t = runs[runs["task"] == task]
        lines.append(f"*{task}*")
        for base, cand in pairs:
            b, c = t[t["optimizer"] == base], t[t["optimizer"] == cand]
            if b.empty or c.empty:
                continue
            lines.append(f"- {verdict(t, baseline=base, candidate=cand)}")
            cmp = welch(c["best_target"], b["best_target"])
            parity.append(not cmp.significant)
            if base in ("adamw", "torch_adamw", "adam") and cand != base:
                saved = 1 - c["state_bytes_per_param"].mean() / b["state_bytes_per_param"].mean()
                savings.append(saved)
                lines.append(
                    f"  state: {c['state_bytes_per_param'].mean():.3f} vs "
                    f"{b['state_bytes_per_param'].mean():.3f} B/param ({saved:.0%} less)"
                )
        lines.append("")
    if parity:
        lines.append(
            f"**Agreement.** Accuracy parity: {sum(parity)}/{len(parity)} comparisons show no significant "
            f"difference at 0.05. State memory: {min(savings):.0%}-{max(savings):.0%} less "
            "(the paper's ~75% holds where most parameters sit in tensors of >= 4096 values; small "
            "tensors keep 32-bit state, so small models save less)."
        )
    return "\n".join(lines) + "\n"


def sgd_vs_adam(runs: pd.DataFrame) -> str:
    lines = [
        "## Verdict: SGD vs adaptive methods (Wilson et al., NeurIPS 2017)",
        "",
        "**Paper.** Tuned SGD with momentum generalizes better than tuned adaptive methods (higher "
        "test accuracy, smaller train-test gap), even when the adaptive methods fit the training "
        "set as well or faster.",
        "",
        f"**Measured** (seeds {_seeds(runs)}; each optimizer at its best lr by mean test metric — "
        "there is no separate validation split at this scale, so this favours every optimizer "
        "equally):",
        "",
    ]
    out = []
    for task in sorted(set(runs["task"])):
        t = runs[runs["task"] == task]
        tuned = {}
        for opt in ("sgd", "adam", "adamw"):
            g = t[t["optimizer"] == opt]
            if g.empty:
                continue
            sign = 1 if g["target_direction"].iloc[0] == "max" else -1
            lr = (g.groupby(f"{HP}lr")["best_target"].mean() * sign).idxmax()
            tuned[opt] = {"optimizer": opt, "lr": lr}
            sel = g[g[f"{HP}lr"] == lr]
            lines.append(
                f"- {task} {opt} (lr {lr:g}): test {sel['best_target'].mean():.4f} ± "
                f"{sel['best_target'].std():.2g}, train-test gap {sel['gap'].mean():+.4f}, "
                f"final train loss {sel['final_train_loss'].mean():.4f} (n={len(sel)})"
            )
        for adaptive in ("adam", "adamw"):
            if "sgd" in tuned and adaptive in tuned:
                lines.append(f"- {verdict(t, baseline=tuned[adaptive], candidate=tuned['sgd'])}")
                a = t[(t["optimizer"] == "sgd") & (t[f"{HP}lr"] == tuned["sgd"]["lr"])][
                    "best_target"
                ]
                b = t[(t["optimizer"] == adaptive) & (t[f"{HP}lr"] == tuned[adaptive]["lr"])][
                    "best_target"
                ]
                out.append(welch(a, b))
    if out:
        wins = sum(c.significant and c.diff > 0 for c in out)
        losses = sum(c.significant and c.diff < 0 for c in out)
        lines += [
            "",
            f"**Agreement.** SGD significantly better in {wins}, worse in {losses}, no significant "
            f"difference in {len(out) - wins - losses} of {len(out)} comparisons. "
            + (
                "This agrees with the paper."
                if wins and not losses
                else "At this CPU scale the paper's effect is not reproduced; its gaps are a few points "
                "of CIFAR-10 accuracy after hundreds of epochs."
            ),
        ]
    return "\n".join(lines) + "\n"


VERDICTS = {"decoupled_wd": decoupled_wd, "state_8bit": state_8bit, "sgd_vs_adam": sgd_vs_adam}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.report.experiments")
    parser.add_argument("experiment", choices=sorted(VERDICTS))
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        write_report(
            args.runs,
            args.out,
            f"optbench experiment: {args.experiment}",
            args.force,
            "python -m suite.report.experiments "
            + " ".join(sys.argv[1:] if argv is None else argv),
        )
        runs = collect(args.runs).runs
    except (RecordError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if runs.empty:
        print("error: no completed runs to judge", file=sys.stderr)
        return 1
    text = VERDICTS[args.experiment](runs[runs["status"] == "ok"])
    (args.out / "VERDICT.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
