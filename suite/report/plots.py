"""PNG plots: train-loss curves with seed bands, lr x weight-decay heatmaps.

Matplotlib's Agg backend only (no display); every function returns the paths it wrote.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from suite.report.collect import HP, Records  # noqa: E402
from suite.report.tables import hp_label, shown_hparams  # noqa: E402

BOX = {
    "facecolor": "white",
    "alpha": 0.6,
    "linewidth": 0,
}  # keeps cell labels legible on any colour
MAX_LINES = 10  # more groups than this in one panel: plot each optimizer's best setting only


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:80] or "x"


def _seed_band(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean, min and max of the train loss over seeds at each step.

    Only steps every seed logged, so the mean never jumps where one seed is missing."""
    wide = curves.pivot_table(index="step", columns="folder", values="loss", aggfunc="last")
    full = wide.dropna()
    wide = full if len(full) else wide
    return pd.DataFrame({"mean": wide.mean(axis=1), "lo": wide.min(axis=1), "hi": wide.max(axis=1)})


def _shown_groups(agg: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if len(agg) <= MAX_LINES:
        return agg, ""
    higher = agg["target_direction"].iloc[0] == "max"
    key = agg["best_target_mean"].fillna(-math.inf if higher else math.inf)
    best = (
        key.groupby(agg["optimizer"]).idxmax() if higher else key.groupby(agg["optimizer"]).idxmin()
    )
    return agg.loc[sorted(best)], " (best setting per optimizer)"


def loss_curves(records: Records, agg: pd.DataFrame, out: Path) -> list[Path]:
    """One panel per task: mean train loss over seeds vs step, shaded min-max over seeds."""
    curves = records.curves
    tasks = sorted(agg["task"].unique()) if not agg.empty else []
    if not tasks or curves.empty:
        return []
    cols = min(len(tasks), 3)
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4 * rows), squeeze=False)
    hp_cols, _ = shown_hparams(agg)
    for ax, task in zip(axes.flat, tasks, strict=False):
        groups, note = _shown_groups(agg[agg["task"] == task])
        for _, g in groups.iterrows():
            c = curves[curves["group"] == g["group"]]
            c = c[np.isfinite(c["loss"]) & np.isfinite(c["step"])]
            if c.empty:
                continue
            band = _seed_band(c)
            label = f"{g['optimizer']} {hp_label(g, hp_cols)} (n={g['n']})"
            (line,) = ax.plot(band.index, band["mean"], label=label[:70], lw=1.3)
            if g["n"] > 1:
                ax.fill_between(
                    band.index, band["lo"], band["hi"], color=line.get_color(), alpha=0.2
                )
        ax.set_title(f"{task}{note}", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("train loss (mean, min-max over seeds)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.set_visible(False)
    fig.tight_layout()
    path = out / "loss_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def _numeric(series: pd.Series) -> bool:
    return series.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all()


def heatmaps(agg: pd.DataFrame, out: Path) -> list[Path]:
    """Mean best target metric over an lr x weight_decay grid, one per task x optimizer
    (x setting of any other hyperparameter that also varies) whose groups vary both."""
    lr, wd = f"{HP}lr", f"{HP}weight_decay"
    if agg.empty or lr not in agg or wd not in agg:
        return []
    paths = []
    for (task, opt, steps), g in agg.groupby(["task", "optimizer", "max_steps"], sort=True):
        g = g[g[lr].notna() & g[wd].notna()]
        if g.empty or not (_numeric(g[lr]) and _numeric(g[wd])):
            continue
        others = [
            c
            for c in g.columns
            if c.startswith(HP) and c not in (lr, wd) and g[c].astype(str).nunique() > 1
        ]
        rest = (
            g[others].astype(str).agg(", ".join, axis=1) if others else pd.Series("", index=g.index)
        )
        for i, (setting, h) in enumerate(g.groupby(rest, sort=True)):
            if h[lr].nunique() < 2 or h[wd].nunique() < 2:
                continue
            name = f"heatmap_{safe_name(task)}_{safe_name(opt)}" + (f"_{i}" if others else "")
            if agg["max_steps"][agg["task"] == task].nunique() > 1:
                name += f"_{int(steps) if math.isfinite(steps) else 'nan'}steps"
            while out / f"{name}.png" in paths:  # two names that sanitise alike
                name += "_"
            paths.append(
                _heatmap(h, lr, wd, out / f"{name}.png", f"{task} / {opt} {setting}".strip())
            )
    return paths


def _heatmap(h: pd.DataFrame, lr: str, wd: str, path: Path, title: str) -> Path:
    lrs, wds = sorted(h[lr].unique()), sorted(h[wd].unique())
    grid = np.full((len(wds), len(lrs)), np.nan)
    ns = np.zeros_like(grid, dtype=int)
    for _, r in h.iterrows():
        i, j = wds.index(r[wd]), lrs.index(r[lr])
        grid[i, j], ns[i, j] = r["best_target_mean"], r["n"]
    higher = h["target_direction"].iloc[0] == "max"
    fig, ax = plt.subplots(figsize=(1.1 * len(lrs) + 2.5, 0.8 * len(wds) + 2))
    im = ax.imshow(
        np.ma.masked_invalid(grid), cmap="viridis" if higher else "viridis_r", aspect="auto"
    )
    for i in range(len(wds)):
        for j in range(len(lrs)):
            text = "-" if ns[i, j] == 0 else f"{grid[i, j]:.3g}\nn={ns[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, bbox=BOX)
    ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs])
    ax.set_yticks(range(len(wds)), [f"{v:g}" for v in wds])
    ax.set_xlabel("lr")
    ax.set_ylabel("weight_decay")
    ax.set_title(title[:80], fontsize=9)
    fig.colorbar(im, ax=ax, label=f"best {h['target_metric'].iloc[0]} (mean over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
