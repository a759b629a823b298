"""Has the reference's val curve flattened by the budget? The check the CPU tier's budgets
must pass (issue 20): over the target-setting runs (the tuned reference AdamW at fresh
seeds), the last quarter of the budget improves the best val metric by less than the
seed spread.

For run i with best-so-far val metric b_i(s) (direction-signed, so larger is better) and
budget S:

    gain_i   = b_i(S) - b_i(3S/4)        (b_i(3S/4): the best over evaluations at steps <= 3S/4)
    gain     = median_i gain_i
    spread   = sd_i b_i(S)                (sample standard deviation over seeds, ddof = 1)
    flat     = gain < spread

Written beside the target as ``flatness.md`` and ``flatness.png`` (the curves, the 3S/4
line and the target), both atomically.
"""

from __future__ import annotations

import io
import json
import math
import os
import statistics
from pathlib import Path

from suite.record import atomic_write_text, read_jsonl, write_bytes


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
    """The flatness of the target-setting runs under ``target_dir`` (``s<seed>/``) against
    the target in its ``target.json``: per-seed gains, their median, the spread, the verdict."""
    target = json.loads((Path(target_dir) / "target.json").read_text())
    sign = 1.0 if target["direction"] == "max" else -1.0
    curves = {
        seed: curve(Path(target_dir) / f"s{seed}", target["metric"]) for seed in target["seeds"]
    }
    gains, finals = {}, []
    for seed, evals in curves.items():
        end, at = best_so_far(evals, sign, budget), best_so_far(evals, sign, 0.75 * budget)
        gains[seed], _ = end - at, finals.append(end)
    gain = statistics.median(gains.values())
    spread = statistics.stdev(finals) if len(finals) > 1 else math.nan
    return {
        "metric": target["metric"],
        "budget": budget,
        "gains": gains,
        "gain": gain,
        "spread": spread,
        "flat": bool(gain < spread),
        "curves": curves,
        "target": target["value"],
    }


def markdown(task: str, c: dict) -> str:
    verdict = "flattened" if c["flat"] else "NOT flattened: the budget ends while it still improves"
    gains = ", ".join(f"s{s}: {g:+.4f}" for s, g in c["gains"].items())
    return (
        f"# {task}: has the reference's val curve flattened by step {c['budget']}?\n\n"
        "How to read this: the target-setting runs (tuned reference AdamW, fresh seeds, never "
        "scored). Gain = best val metric at the budget minus the best up to 3/4 of it "
        "(direction-signed); flat when the median gain is below the seed spread (sd of the "
        "final best over seeds). `suite/report/flatness.py`.\n\n"
        f"- {c['metric']}: median gain over the last quarter {c['gain']:+.4f} "
        f"(per seed: {gains}); seed spread {c['spread']:.4f}\n"
        f"- verdict: **{verdict}**\n\n![curves](flatness.png)\n"
    )


def plot(task: str, c: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for seed, evals in c["curves"].items():
        ax.plot(
            [s for s, _ in evals], [v for _, v in evals], marker="o", ms=3, label=f"seed {seed}"
        )
    ax.axvline(0.75 * c["budget"], color="grey", ls="--", lw=1, label="3/4 of the budget")
    ax.axhline(c["target"], color="black", ls=":", lw=1, label="target")
    ax.set(xlabel="step", ylabel=c["metric"], title=f"{task}: reference AdamW, target seeds")
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def write(task: str, target_dir: Path, budget: int) -> dict:
    """Check, then write ``flatness.md`` and ``flatness.png`` into ``target_dir``."""
    c = check(target_dir, budget)
    png = Path(target_dir) / "flatness.png"
    write_bytes(png.with_name(".flatness.png.tmp"), plot(task, c))
    os.replace(png.with_name(".flatness.png.tmp"), png)
    atomic_write_text(Path(target_dir) / "flatness.md", markdown(task, c))
    return c
