"""Telemetry plots: effective-lr bands and update/weight ratios over steps, per layer group.

For each run whose ``metrics.jsonl`` holds ``telemetry`` events (``telemetry_every=N``,
see suite/runner/telemetry.py), one PNG with two panels:

- effective lr lr / (sqrt(v_hat) + eps): per layer group the median over its layers of
  the 5 %, 50 % and 95 % quantiles, drawn as a band (5-95 %) around a line (50 %);
  absent for optimizers without a second moment (SGD, Lion, Muon's hidden weights);
- update/weight ratio ||delta p|| / ||p||: per layer group the median over its layers,
  log scale, with the ~1e-3 of a healthy run marked.

A layer group is the parameter name with its block indices collapsed
(``transformer.h.3.attn.c_attn.weight`` -> ``transformer.h.*.attn.c_attn.weight``).
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from suite.record import read_jsonl  # noqa: E402
from suite.report.present.plots.curves import safe_name  # noqa: E402
from suite.report.read.collect import Records  # noqa: E402

MAX_RUNS = 12  # one figure per run, at most this many (the first by folder)
MAX_GROUPS = 8  # layer groups drawn per panel (the most populous)
HEALTHY_RATIO = 1e-3


def layer_group(name: str) -> str:
    return re.sub(r"\.\d+(?=\.|$)", ".*", name)


def telemetry_frame(folder: Path) -> pd.DataFrame:
    """One row per (step, layer) of a run's telemetry events; empty if it has none."""
    path = Path(folder) / "metrics.jsonl"
    rows = []
    if path.exists():
        for event in read_jsonl(path):
            if event.get("event") == "telemetry":
                for layer, stats in event["layers"].items():
                    rows.append({"step": event["step"], "layer": layer, **stats})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["group"] = frame["layer"].map(layer_group)
    return frame


def _groups(frame: pd.DataFrame) -> list[str]:
    sizes = frame.groupby("group")["layer"].nunique().sort_values(ascending=False)
    return list(sizes.index[:MAX_GROUPS])


def telemetry_plots(records: Records, out: Path) -> list[Path]:
    """The figures of the runs that logged telemetry (see the module docstring)."""
    written: list[Path] = []
    if records.runs.empty:
        return written
    for _, run in records.runs.sort_values("folder").iterrows():
        if len(written) >= MAX_RUNS:
            break
        frame = telemetry_frame(Path(run["folder"]))
        if frame.empty:
            continue
        fig, (ax_lr, ax_ratio) = plt.subplots(1, 2, figsize=(11, 4))
        for group in _groups(frame):
            g = frame[frame["group"] == group].groupby("step").median(numeric_only=True)
            if "eff_lr_p50" in g and g["eff_lr_p50"].notna().any():
                (line,) = ax_lr.plot(g.index, g["eff_lr_p50"], lw=1.3, label=group[:40])
                ax_lr.fill_between(
                    g.index, g["eff_lr_p5"], g["eff_lr_p95"], color=line.get_color(), alpha=0.2
                )
            if g["update_ratio"].notna().any():
                ax_ratio.plot(g.index, g["update_ratio"], lw=1.3, label=group[:40])
        ax_ratio.axhline(HEALTHY_RATIO, color="grey", ls="--", lw=1, label="1e-3")
        for ax, ylabel in (
            (ax_lr, "effective lr: 5-95 % band, median line"),
            (ax_ratio, "update/weight ratio ||dp|| / ||p||"),
        ):
            ax.set_yscale("log")
            ax.set_xlabel("step")
            ax.set_ylabel(ylabel, fontsize=8)
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=6)
        if not ax_lr.lines:
            ax_lr.text(0.5, 0.5, "no second moment (exp_avg_sq)", ha="center",
                       transform=ax_lr.transAxes)  # fmt: skip
        fig.suptitle(f"{run['task']} / {run['optimizer']} seed {run['seed']}", fontsize=10)
        fig.tight_layout()
        path = out / f"telemetry_{safe_name(Path(run['folder']).name)}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
