"""8-bit optimizer state (Dettmers et al., ICLR 2022): each 8-bit AdamW against its 32-bit
counterpart, per workload, with equivalence margins, and the state memory saved."""

from __future__ import annotations

import pandas as pd

from suite.report.compute.families import paired_family, test_error
from suite.report.compute.selection import Choose, select_on_val
from suite.report.documents.papers import text


def state_8bit(runs: pd.DataFrame, choose: Choose = select_on_val) -> str:
    lines = text.opening(
        "8-bit optimizer state (Dettmers et al., ICLR 2022)",
        "Block-wise 8-bit Adam keeps the accuracy of 32-bit Adam while using about 75% "
        "less optimizer-state memory.",
    )
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
                f"- {opt}: {text.config_text(chosen[opt])}; test error {text.mean_std(test_error(chosen[opt]))} "
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
    text.fill_measured(lines, text.scored_seeds(runs, [c for _, c, _ in items]))
    verdicts = paired_family(items)
    if verdicts:
        lines += [f"- {v.line('test error')}" for v in verdicts] + [
            "",
            text.family_note(len(items)),
        ]
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
