"""The tuning budget each study got, as a table, and the tasks whose studies got unequal ones."""

from __future__ import annotations

import pandas as pd


def budget_table(studies) -> pd.DataFrame:
    rows = []
    for st in studies:
        b = st.budget
        rows.append(
            {
                "Task": st.task,
                "Optimizer": st.optimizer,
                "Trials": b.get("trials"),
                "Steps": b.get("steps") if b.get("steps") is not None else "task default",
                "Evals/run": b.get("evals"),
                "Sampler": f"{b.get('sampler')} (seed {b.get('sampler_seed')})",
                "Rerun seeds": ",".join(str(s) for s in b.get("rerun_seeds", [])),
                "Selected": ", ".join(st.meta["selected"]["overrides"]),
            }
        )
    return pd.DataFrame(rows)


def check_equal_budgets(studies) -> list[str]:
    """One line per task whose studies did not get the same trial and step budget."""
    notes = []
    by_task: dict[str, set] = {}
    for st in studies:
        b = st.budget
        key = (b.get("trials"), b.get("steps"), b.get("evals"), len(b.get("rerun_seeds", [])))
        by_task.setdefault(st.task, set()).add(key)
    for task, keys in sorted(by_task.items()):
        if len(keys) > 1:
            notes.append(f"**unequal budgets on {task}**: (trials, steps, evals, seeds) {keys}")
    return notes
