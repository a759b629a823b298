"""Has the reference's val curve flattened by the budget? The check the CPU tier's budgets
must pass (issue 20: the last part of the budget improves val by less than the seed spread).

The runs use a warmup-cosine schedule tied to the budget, so the last quarter of a run is
its annealing phase and always gains; the question is whether MORE steps would. The
campaign therefore reruns the target-setting runs (tuned reference AdamW, fresh seeds,
never scored) at twice the budget. For seed i, with b_i(s) the best-so-far val metric
(direction-signed: larger is better) of the run of budget S and B_i(s) of the run of 2S:

    gain_i   = B_i(2S) - b_i(S)           (paired by seed: same init and batch order)
    gain     = median_i gain_i
    spread   = sd_i b_i(S)                (sample standard deviation over seeds, ddof = 1)
    flat     = gain < spread

Without the 2S runs, gain_i = b_i(S) - b_i(3S/4) (the literal last-quarter reading, inflated
by annealing). Written beside the target as ``flatness.md``, ``flatness.png`` and ``flatness.json`` (the
verdict the campaign reads before it spends the budget), atomically.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path

import pandas as pd

from suite.record import atomic_write_text, read_jsonl, write_bytes
from suite.report.compute.selection import at_config
from suite.report.present.plots.flatness import flatness_plot
from suite.report.read.rows import HP


def best_so_far(evals: list[tuple[int, float]], sign: float, upto: float) -> float:
    """The best of ``sign * value`` over evaluations at steps <= ``upto`` (nan if none)."""
    seen = [sign * v for step, v in evals if step <= upto and math.isfinite(v)]
    return max(seen) if seen else math.nan


def curve(run_dir: Path, metric: str) -> list[tuple[int, float]]:
    """(step, value) of ``metric`` at every evaluation of a run, from ``metrics.jsonl``."""
    rows = read_jsonl(Path(run_dir) / "metrics.jsonl")
    return [
        (int(r["step"]), float(r[metric])) for r in rows if r.get("event") == "eval" and metric in r
    ]


def check(target_dir: Path, budget: int) -> dict:
    """The flatness of the target-setting runs under ``target_dir`` (``s<seed>/``, and
    ``double/s<seed>/`` at twice the budget where present) against ``target.json``."""
    target_dir = Path(target_dir)
    target = json.loads((target_dir / "target.json").read_text())
    seeds = target["seeds"]
    double = target_dir / "double"
    c = check_runs(
        {s: target_dir / f"s{s}" for s in seeds},
        {s: double / f"s{s}" for s in seeds} if double.is_dir() else {},
        target["metric"],
        target["direction"],
        budget,
    )
    return c | {"target": target["value"]}


def check_runs(at_budget: dict, doubled: dict, metric: str, direction: str, budget: int) -> dict:
    """Flatness from run folders by seed: ``at_budget`` (seed -> the run of S steps) and
    ``doubled`` (seed -> the same configuration's run of 2S; may hold fewer seeds, or none:
    then the last quarter is read). The spread is over every seed at S, the gain over the
    seeds run at 2S."""
    sign = 1.0 if direction == "max" else -1.0
    curves = {s: curve(d, metric) for s, d in at_budget.items()}
    finals = [best_so_far(c, sign, budget) for c in curves.values()]
    last_quarter = {
        s: best_so_far(c, sign, budget) - best_so_far(c, sign, 0.75 * budget)
        for s, c in curves.items()
    }
    doubled = {s: curve(d, metric) for s, d in doubled.items()}
    gains = (
        {
            s: best_so_far(doubled[s], sign, 2 * budget) - best_so_far(curves[s], sign, budget)
            for s in doubled
        }
        if doubled
        else last_quarter
    )
    gain = statistics.median(gains.values())
    spread = statistics.stdev(finals) if len(finals) > 1 else math.nan
    return {
        "metric": metric,
        "budget": budget,
        "test": "twice the budget" if doubled else "last quarter",
        "gains": gains,
        "gain": gain,
        "last_quarter": last_quarter,
        "spread": spread,
        "flat": bool(gain < spread),
        "curves": curves,
        "doubled": doubled,
    }


def doubled_lines(scored: pd.DataFrame, double: pd.DataFrame) -> list[str]:
    """One line per task and optimizer of ``double`` (runs at twice the budget): the check
    against the ``scored`` runs of the same configuration at half its steps, by seed."""
    lines = []
    for (task, opt), d in double.groupby(["task", "optimizer"]):
        budget = int(d["max_steps"].iloc[0]) // 2
        same = (scored["task"] == task) & (scored["optimizer"] == opt)
        hps = [c for c in d.columns if c.startswith(HP) and d[c].notna().any()]
        at_s = at_config(scored[same & (scored["max_steps"] == budget)], d, hps)
        if at_s.empty:
            lines.append(f"- {task} {opt}: no runs of this configuration at {budget} steps")
            continue
        c = check_runs(
            dict(zip(at_s["seed"], map(Path, at_s["folder"]), strict=True)),
            dict(zip(d["seed"], map(Path, d["folder"]), strict=True)),
            d["target_metric"].iloc[0],
            d["target_direction"].iloc[0],
            budget,
        )
        verdict = "flattened" if c["flat"] else "NOT flattened: more steps still pay"
        lines.append(
            f"- {task} {opt}: at {2 * budget} steps {c['metric']} gains {c['gain']:+.4f} over "
            f"{budget} (median of seeds {', '.join(map(str, sorted(c['gains'])))}) vs seed "
            f"spread {c['spread']:.4f} at {budget} (n={len(at_s)}): **{verdict}**"
        )
    return lines


def markdown(task: str, c: dict) -> str:
    verdict = "flattened" if c["flat"] else "NOT flattened: more steps still pay"
    gains = ", ".join(f"s{s}: {g:+.4f}" for s, g in c["gains"].items())
    quarter = statistics.median(c["last_quarter"].values())
    lines = [
        f"# {task}: has the reference's val curve flattened by step {c['budget']}?\n",
        "How to read this: the target-setting runs (the tuned reference AdamW at fresh seeds, "
        "never scored) at the budget S and, same seeds and hyperparameters, at 2S (the "
        "warmup-cosine schedule stretched to 2S). Gain = best val metric at 2S minus best at "
        "S, by seed (direction-signed, larger is better); the budget has flattened when the "
        "median gain is below the seed spread (sd over seeds of the best at S). Without the 2S "
        "runs the gain is read over the last quarter of the S runs, which the cosine "
        "schedule's annealing inflates. `suite/report/documents/flatness.py`.\n",
        f"- test: {c['test']}; {c['metric']}: median gain {c['gain']:+.4f} (per seed: {gains})",
        f"- seed spread at S: {c['spread']:.4f}; last-quarter gain at S: {quarter:+.4f}",
        f"- verdict: **{verdict}**\n",
        "![curves](flatness.png)\n",
    ]
    return "\n".join(lines)


def write(task: str, target_dir: Path, budget: int) -> dict:
    """Check, then write ``flatness.md`` and ``flatness.png`` into ``target_dir``."""
    c = check(target_dir, budget)
    png = Path(target_dir) / "flatness.png"
    write_bytes(png.with_name(".flatness.png.tmp"), flatness_plot(task, c))
    os.replace(png.with_name(".flatness.png.tmp"), png)
    verdict = {k: c[k] for k in ("metric", "budget", "test", "gain", "spread", "flat")}
    atomic_write_text(Path(target_dir) / "flatness.json", json.dumps(verdict, indent=2) + "\n")
    atomic_write_text(Path(target_dir) / "flatness.md", markdown(task, c))
    return c
