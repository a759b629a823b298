"""The leaderboard section of the protocol report, with intervals (present layer).

Scores, their 95 % seed-bootstrap intervals and rank probabilities come from
:mod:`suite.report.leaderboard`; a rank is stated only where intervals separate. Records
identical on every workload (:func:`suite.report.scored.identical_everywhere`) are one
computation and are shown once (``adamw (= torch_adamw)``); entries identical on some
workloads only are named. Seconds are not scored here: runs made on different days and loads
give indicative seconds only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from suite.report.compute.leaderboard import B
from suite.report.compute.leaderboard import leaderboard as interval_leaderboard
from suite.report.compute.scoring import TAU_MAX
from suite.report.present.plots.profiles import profile_band_plot
from suite.report.present.render import to_markdown
from suite.report.read.scored import identical_everywhere, identical_groups, study_runs
from suite.report.read.targets import Target


def _num(x: float) -> str:
    return "not reached" if x == float("inf") else format(x, ".3g")


def interval_section(studies, targets: dict, board: pd.DataFrame, runs, out: Path):
    """The leaderboard with intervals (:mod:`suite.report.leaderboard`): score [95 %],
    rank only where intervals separate, P(rank); identical records shown once."""
    goals = {t: Target(v["metric"], float(v["value"]), v["direction"]) for t, v in targets.items()}
    scored = study_runs(studies, goals)
    twins = identical_everywhere(scored)
    times: dict = {}
    for r in scored:
        if r.optimizer not in twins:
            times.setdefault(r.optimizer, {}).setdefault(r.task, {})[r.seed] = r.ttt
    ib = interval_leaderboard(times)
    prob = ib.rank_probability
    table = ib.table.join(prob.add_prefix("p_rank_"))
    table["same_as"] = [
        ", ".join(sorted(b for b, a in twins.items() if a == o)) for o in table.index
    ]
    table.rename_axis("optimizer").to_csv(out / "leaderboard_intervals.csv")
    steps = board.set_index("optimizer")
    solved = {o: f"{steps.loc[o, 'solved']}/{steps.loc[o, 'workloads']}" for o in steps.index}
    shown = pd.DataFrame(
        {
            "Rank": table["rank"],
            "Optimizer": [
                o + (f" (= {table.loc[o, 'same_as']})" if table.loc[o, "same_as"] else "")
                for o in table.index
            ],
            "Score [95 % CI]": [
                f"{r.score:.3f} [{r.low:.3f}, {r.high:.3f}]" for r in table.itertuples()
            ],
            "P(rank 1)": prob[1].map(lambda x: f"{x:.2f}").to_numpy(),
            "Most likely rank (P)": [
                f"{prob.loc[o].idxmax()} ({prob.loc[o].max():.2f})" for o in table.index
            ],
            "Solved": [solved.get(o, "-") for o in table.index],
            **{
                f"{c[6:]} median steps": [_num(steps.loc[o, c]) for o in table.index]
                for c in steps.columns
                if c.startswith("steps.")
            },
        }
    )
    partial = _partial_twins(scored, twins)
    lines = [
        "",
        "## Leaderboard",
        "",
        f"_Score: integrated performance profile over tau in [1, {TAU_MAX:g}] (1: fastest on every "
        "workload), on the median over seeds of the steps to the val target (a miss is a miss). "
        f"95 % interval: {B} bootstrap replicates resampling the seeds of each workload (paired "
        "across optimizers). A rank is stated only where intervals separate; a range (e.g. 2-5) "
        "means the data cannot order those entries. P(rank k): share of replicates. Tuning "
        "studies are not resampled (one study per optimizer and workload: its spread is not "
        "measured here). Seconds are not scored: these runs were made on different days and "
        "loads, so their seconds are indicative only (`make compare` times a candidate against "
        "an interleaved AdamW control)._",
        "",
        to_markdown(shown),
        "",
        "Rank probabilities: P(rank = k) per optimizer (`leaderboard_intervals.csv`).",
        "",
        to_markdown(
            pd.DataFrame({"Optimizer": prob.index})
            .join(prob.map(lambda x: f"{x:.2f}").reset_index(drop=True).add_prefix("P(rank "))
            .rename(columns=lambda c: c + ")" if c.startswith("P(rank") else c)
        ),
    ]
    if twins:
        lines += [
            "",
            "Identical records (same metrics at every evaluation of every seed, on every "
            "workload) are one computation and are shown once: "
            + "; ".join(f"{b} = {a}" for b, a in sorted(twins.items()))
            + ".",
        ]
    if partial:
        lines += ["", "Identical on some workloads only (kept apart): " + "; ".join(partial) + "."]
    path = out / "plots" / "performance_profile_bands.png"
    return lines, [profile_band_plot(ib.profiles, ib.bands, runs, path)]


def _partial_twins(scored, twins: dict[str, str]) -> list[str]:
    """``"b = a on t1, t2"`` for optimizers identical on some workloads only."""
    pairs: dict[tuple[str, str], list[str]] = {}
    for task in sorted({r.task for r in scored}):
        for b, a in sorted(identical_groups(scored, task).items()):
            if b not in twins and a not in twins:
                pairs.setdefault((b, a), []).append(task)
    return [f"{b} = {a} on {', '.join(ts)}" for (b, a), ts in sorted(pairs.items())]
