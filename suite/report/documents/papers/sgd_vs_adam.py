"""SGD vs adaptive methods (Wilson et al., NeurIPS 2017): tuned momentum SGD against tuned
adaptive methods on test error and train-test gap."""

from __future__ import annotations

import pandas as pd

from suite.report.compute.families import paired_family, test_error
from suite.report.compute.grid_edges import grid_edges
from suite.report.compute.selection import Choose, select_on_val
from suite.report.documents.papers import text

SGDS = ("sgd", "sgd_nesterov")  # heavy-ball or Nesterov momentum: the paper's SGD and HB
ADAPTIVE = ("adam", "adamw", "torch_adamw_fused")


def sgd_vs_adam(runs: pd.DataFrame, choose: Choose = select_on_val) -> str:
    lines = text.opening(
        "SGD vs adaptive methods (Wilson et al., NeurIPS 2017)",
        "Tuned SGD with momentum generalizes better than tuned adaptive methods (higher "
        "test accuracy, smaller train-test gap), even when the adaptive methods fit the training "
        "set as well or faster.",
    )
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
                f"- {task} {opt} ({text.config_text(sel)}): test error {text.mean_std(test_error(sel))}, "
                f"train-test gap {sel['gap'].mean():+.4f} ({t['test_metric'].iloc[0][5:]}), "
                f"final train loss {sel['final_train_loss'].mean():.4f} (n={len(sel)})"
            )
        items += [
            (f"{task} {sgd} vs {adaptive}", tuned[sgd], tuned[adaptive])
            for sgd in SGDS
            for adaptive in ADAPTIVE
            if sgd in tuned and adaptive in tuned
        ]
    text.fill_measured(lines, text.scored_seeds(runs, scored))
    verdicts = paired_family(items)
    if verdicts:
        words = [v.word for v in verdicts]
        wins, losses = words.count("better"), words.count("worse")
        lines += [f"- {v.line('test error')}" for v in verdicts]
        lines += ["", text.family_note(len(items)), ""]
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
