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

from suite.record import atomic_write_text, read_jsonl, write_bytes
from suite.report.present.plots.flatness import flatness_plot


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
    sign = 1.0 if target["direction"] == "max" else -1.0
    seeds = target["seeds"]
    curves = {seed: curve(target_dir / f"s{seed}", target["metric"]) for seed in seeds}
    finals = [best_so_far(curves[s], sign, budget) for s in seeds]
    last_quarter = {
        s: best_so_far(curves[s], sign, budget) - best_so_far(curves[s], sign, 0.75 * budget)
        for s in seeds
    }
    doubled = {}
    if (target_dir / "double").is_dir():
        doubled = {s: curve(target_dir / "double" / f"s{s}", target["metric"]) for s in seeds}
        gains = {
            s: best_so_far(doubled[s], sign, 2 * budget) - best_so_far(curves[s], sign, budget)
            for s in seeds
        }
    gains = gains if doubled else last_quarter
    gain = statistics.median(gains.values())
    spread = statistics.stdev(finals) if len(finals) > 1 else math.nan
    return {
        "metric": target["metric"],
        "budget": budget,
        "test": "twice the budget" if doubled else "last quarter",
        "gains": gains,
        "gain": gain,
        "last_quarter": last_quarter,
        "spread": spread,
        "flat": bool(gain < spread),
        "curves": curves,
        "doubled": doubled,
        "target": target["value"],
    }


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
