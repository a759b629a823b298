"""The protocol report's tables of the reruns at the selected configuration: convergence,
generalization and memory (:mod:`suite.report.present.tables`) with each study's trial
budget beside its optimizer, the loss curves and the cost chart. Test metrics are reported
here, at the configuration val selected; nothing reads them to choose. A run whose target
value is not the committed one (a stale baseline) is kept and named in a visible line."""

from __future__ import annotations

from pathlib import Path

from suite.report.compute.aggregate import aggregate
from suite.report.present.plots.curves import cost_chart, loss_curves
from suite.report.present.render import to_markdown
from suite.report.present.tables import build_tables
from suite.report.read.collect import collect, stale_targets


def rerun_tables(
    studies, out: Path, committed: dict[str, float] | None
) -> tuple[list[str], list[Path]]:
    """Markdown lines of the three tables (their CSVs written into ``out``) and the plots."""
    lines: list[str] = []
    records = collect([d for st in studies for d in st.rerun_dirs()])
    stale = stale_targets(records.runs.to_dict("records"), committed) if committed else []
    for s in stale:
        lines += ["", f"**{s}**"]
    agg = aggregate(records)
    trials = {(st.task, st.optimizer): st.budget.get("trials") for st in studies}
    for t in build_tables(agg, records):
        if {"Task", "Optimizer"} <= set(t.shown.columns) and not t.shown.empty:
            where = list(t.shown.columns).index("Optimizer") + 1
            per_row = [
                trials.get(k, "-") for k in zip(t.shown["Task"], t.shown["Optimizer"], strict=True)
            ]
            t.shown.insert(where, "Trials", [str(x) for x in per_row])
            t.data["trials"] = per_row
        t.data.to_csv(out / f"{t.name}.csv", index=False)
        lines += [
            "",
            f"## {t.title} (reruns at the selected configuration)",
            "",
            f"_{t.caption}_",
            "",
            to_markdown(t.shown),
        ]
    plots = loss_curves(records, agg, out / "plots") + cost_chart(agg, out / "plots")
    return lines, plots
