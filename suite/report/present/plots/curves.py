"""PNG plots: train-loss and val-metric curves with seed bands, a memory and step-time
chart, lr x weight-decay heatmaps.

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

from suite.report.present.plots.style import colour, emphasis, is_candidate, legend_note, linestyle  # noqa: E402
from suite.report.present.render import hp_label, shown_hparams  # noqa: E402
from suite.report.read.collect import Records  # noqa: E402
from suite.report.read.rows import HP  # noqa: E402

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


def _band(frame: pd.DataFrame, value: str) -> pd.DataFrame:
    return _seed_band(frame.rename(columns={value: "loss"}))


def _same(a: pd.Series, b: pd.Series) -> bool:
    """Two mean curves that coincide: same steps, values within 1e-6 (relative)."""
    if len(a) != len(b) or not (a.index == b.index).all():
        return False
    return bool(np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-6, atol=1e-9))


def loss_curves(records: Records, agg: pd.DataFrame, out: Path) -> list[Path]:
    """Per task, side by side: mean train loss over seeds vs step, and the target (val)
    metric at each evaluation; shaded min-max over seeds. Colour: optimizer family (darker:
    8-bit state); line style: implementation. A curve that coincides with another's says so
    in the legend ("= name")."""
    curves, evals = records.curves, records.evals
    tasks = sorted(agg["task"].unique()) if not agg.empty else []
    if not tasks or curves.empty:
        return []
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.8 * len(tasks)), squeeze=False)
    hp_cols, _ = shown_hparams(agg)
    for (ax_loss, ax_val), task in zip(axes, tasks, strict=True):
        groups, note = _shown_groups(agg[agg["task"] == task])
        any_cand = any(is_candidate(g["family"], g["impl"]) for _, g in groups.iterrows())
        for ax, frame, value in ((ax_loss, curves, "loss"), (ax_val, evals, "value")):
            drawn: list[tuple[str, pd.Series]] = []
            for _, g in groups.iterrows():
                cand = is_candidate(g["family"], g["impl"])
                look = colour(g["family"], g["state_bits"], g["impl"], g["optimizer"])
                c = frame[frame["group"] == g["group"]]
                c = c[np.isfinite(c[value]) & np.isfinite(c["step"])]
                if c.empty:
                    continue
                band = _band(c, value)
                name = f"{g['optimizer']} {hp_label(g, hp_cols)}"[:60]
                same = [n for n, m in drawn if _same(m, band["mean"])]
                label = f"{name} (n={g['n']})" + (f" = {', '.join(same)}" if same else "")
                ax.plot(
                    band.index,
                    band["mean"],
                    label=label,
                    color=look,
                    ls=linestyle(g["impl"], g["family"]),
                    **emphasis(cand, any_cand),
                )
                if g["n"] > 1:
                    ax.fill_between(
                        band.index,
                        band["lo"],
                        band["hi"],
                        color=look,
                        alpha=0.25 if cand else 0.08 if any_cand else 0.15,
                        zorder=9 if cand else 1,
                    )
                drawn.append((g["optimizer"], band["mean"]))
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=6)
        ax_loss.set_title(f"{task}{note}: train loss", fontsize=10)
        ax_loss.set_ylabel("train loss (mean, min-max over seeds)")
        metric = agg.loc[agg["task"] == task, "target_metric"].iloc[0]
        ax_val.set_title(f"{task}{note}: {metric} at evaluations", fontsize=10)
        ax_val.set_ylabel(f"{metric} (mean, min-max over seeds)")
    fig.suptitle(legend_note(), fontsize=8)
    fig.tight_layout()
    path = out / "loss_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def cost_chart(agg: pd.DataFrame, out: Path) -> list[Path]:
    """Per task: params+grads+state bytes and median step time of each group, as bars."""
    if agg.empty:
        return []
    tasks = sorted(agg["task"].unique())
    fig, axes = plt.subplots(
        len(tasks), 2, figsize=(11, 0.5 + 0.35 * len(agg) + 2 * len(tasks)), squeeze=False
    )
    for (ax_mem, ax_time), task in zip(axes, tasks, strict=True):
        g, note = _shown_groups(agg[agg["task"] == task])
        labels = [f"{o} ({n})" for o, n in zip(g["optimizer"], g["n"], strict=True)]
        colours = [colour(f, b) for f, b in zip(g["family"], g["state_bits"], strict=True)]
        hatches = [{"inhouse": "", "torch": "//", "bnb": ".."}.get(i, "xx") for i in g["impl"]]
        y = np.arange(len(g))
        for ax, col, scale, xlabel in (
            (ax_mem, "tensor_bytes_mean", 1 / 2**20, "params + grads + optimizer state (MiB)"),
            (ax_time, "median_step_time_s_mean", 1e3, "median step time (ms)"),
        ):
            bars = ax.barh(y, g[col].to_numpy(float) * scale, color=colours)
            for bar, h in zip(bars, hatches, strict=True):
                bar.set_hatch(h)
            ax.set_yticks(y, labels, fontsize=7)
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3, axis="x")
        ax_mem.set_title(f"{task}{note}: memory", fontsize=10)
        ax_time.set_title(f"{task}{note}: step time", fontsize=10)
    fig.suptitle(
        legend_note().replace("line: ", "hatch: ").replace("dashed", "//").replace("dotted", ".."),
        fontsize=8,
    )
    fig.tight_layout()
    path = out / "memory_step_time.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def _numeric(series: pd.Series) -> bool:
    return series.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all()


def heatmaps(agg: pd.DataFrame, out: Path) -> list[Path]:
    """Mean best target metric over an lr x weight_decay grid, one PNG per task x optimizer
    (x setting of any other hyperparameter that also varies) whose groups vary both; every
    optimizer of a task (at one step budget) on one colour scale (:func:`heatmap_figures`)."""
    paths = []
    for name, fig in heatmap_figures(agg):
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def heatmap_figures(agg: pd.DataFrame) -> list[tuple[str, plt.Figure]]:
    """The heatmaps of :func:`heatmaps` as (file stem, open figure), not yet saved.

    The colour scale of a task at one step budget is shared by all its optimizers:
    ``vmin, vmax = min, max`` of ``best_target_mean`` over every gridded group of that task
    and budget, so one colour means one value across the optimizers' images."""
    lr, wd = f"{HP}lr", f"{HP}weight_decay"
    if agg.empty or lr not in agg or wd not in agg:
        return []
    figures: list[tuple[str, plt.Figure]] = []
    gridded = agg[agg[lr].notna() & agg[wd].notna()]
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
            while name in (n for n, _ in figures):  # two names that sanitise alike
                name += "_"
            title = f"{task} / {opt} {setting}".strip()
            same = gridded[
                (gridded["task"] == task) & (gridded["max_steps"].astype(str) == str(steps))
            ]["best_target_mean"].to_numpy(float)  # one colour scale for every optimizer
            limits = (np.nanmin(same), np.nanmax(same)) if np.isfinite(same).any() else (0, 1)
            figures.append((name, _heatmap_figure(h, lr, wd, title, limits)))
    return figures


def _heatmap_figure(
    h: pd.DataFrame, lr: str, wd: str, title: str, limits: tuple[float, float]
) -> plt.Figure:
    lrs, wds = sorted(h[lr].unique()), sorted(h[wd].unique())
    grid = np.full((len(wds), len(lrs)), np.nan)
    ns = np.zeros_like(grid, dtype=int)
    for _, r in h.iterrows():
        i, j = wds.index(r[wd]), lrs.index(r[lr])
        grid[i, j], ns[i, j] = r["best_target_mean"], r["n"]
    higher = h["target_direction"].iloc[0] == "max"
    fig, ax = plt.subplots(figsize=(1.1 * len(lrs) + 2.5, 0.8 * len(wds) + 2))
    lo, hi = (float(x) for x in limits)
    im = ax.imshow(
        np.ma.masked_invalid(grid),
        cmap="viridis" if higher else "viridis_r",
        aspect="auto",
        vmin=lo if np.isfinite(lo) else None,
        vmax=hi if np.isfinite(hi) else None,
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
    label = f"best {h['target_metric'].iloc[0]} (mean over seeds; one scale per task)"
    fig.colorbar(im, ax=ax, label=label)
    fig.tight_layout()
    return fig
