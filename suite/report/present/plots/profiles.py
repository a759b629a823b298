"""Plots of the protocol: performance profiles and the search on val (lr x weight decay)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from suite.report.present.plots.curves import safe_name  # noqa: E402
from suite.report.present.plots.style import colour, emphasis, is_candidate, legend_note, linestyle  # noqa: E402


def _look(runs: pd.DataFrame) -> dict[str, tuple[str, str, dict]]:
    """Colour, line style and emphasis per optimizer (a candidate stands out: style.py)."""
    firsts = {o: g.iloc[0] for o, g in runs.groupby("optimizer")}
    cands = {o for o, r in firsts.items() if is_candidate(r["family"], r["impl"])}
    return {
        o: (
            colour(r["family"], r.get("state_bits"), r["impl"], o),
            linestyle(r["impl"], r["family"]),
            emphasis(o in cands, bool(cands)),
        )
        for o, r in firsts.items()
    }


def coinciding(rho: pd.DataFrame) -> list[list[str]]:
    """Groups of optimizers whose profiles are identical (drawn on top of each other)."""
    groups: dict[bytes, list[str]] = {}
    for o in rho.index:
        groups.setdefault(rho.loc[o].to_numpy(float).tobytes(), []).append(o)
    return [g for g in groups.values() if len(g) > 1]


def profile_plot(rhos: dict[str, pd.DataFrame], runs: pd.DataFrame, path: Path) -> Path:
    """rho_o(tau) per optimizer, one panel per unit (steps, seconds)."""
    looks = _look(runs)
    fig, axes = plt.subplots(1, len(rhos), figsize=(5.5 * len(rhos), 4), squeeze=False)
    for ax, (unit, rho) in zip(axes.flat, rhos.items(), strict=True):
        same = {o: g for g in coinciding(rho) for o in g}
        for o in rho.index:
            c, ls, em = looks.get(o, ("k", "-", {"lw": 1.5}))
            label = o + (f" (= {', '.join(x for x in same[o] if x != o)})" if o in same else "")
            ax.step(rho.columns, rho.loc[o], where="post", color=c, ls=ls, label=label, **em)
        ax.set_xlabel("tau (time / fastest time on the workload)")
        ax.set_ylabel("fraction of workloads within tau")
        ax.set_title(f"performance profile, time to val target in {unit}", fontsize=10)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(legend_note(), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def search_heatmaps(trials: pd.DataFrame, out: Path) -> list[Path]:
    """Every trial of a study at (lr, weight_decay), coloured by its best val metric."""
    paths = []
    for (task, opt), g in trials.groupby(["task", "optimizer"], sort=True):
        lr = g["hparams"].map(lambda h: h.get("lr", math.nan)).to_numpy(float)
        wd = g["hparams"].map(lambda h: h.get("weight_decay", math.nan)).to_numpy(float)
        val = g["best_val"].to_numpy(float)
        ok = np.isfinite(lr) & np.isfinite(wd) & (lr > 0) & (wd > 0)
        if ok.sum() < 2:
            continue
        higher = g["direction"].iloc[0] == "max"
        fig, ax = plt.subplots(figsize=(5, 4))
        good = ok & np.isfinite(val)
        sc = ax.scatter(lr[good], wd[good], c=val[good], cmap="viridis" if higher else "viridis_r")
        bad = ok & ~np.isfinite(val)
        ax.scatter(lr[bad], wd[bad], marker="x", color="k", label="diverged/failed")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("lr")
        ax.set_ylabel("weight_decay")
        ax.set_title(f"{task} / {opt}: {len(g)} trials, seed 0", fontsize=9)
        fig.colorbar(sc, ax=ax, label=f"best {g['metric'].iloc[0]}")
        if bad.any():
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"search_{safe_name(task)}_{safe_name(opt)}.png"  # names from a record
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def profile_band_plot(
    rho: pd.DataFrame, bands: tuple[pd.DataFrame, pd.DataFrame], runs: pd.DataFrame, path: Path
) -> Path:
    """rho_o(tau) in steps with its 95 % seed-bootstrap band (:mod:`suite.report.leaderboard`)."""
    looks = _look(runs)
    low, high = bands
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for o in rho.index:
        c, ls, em = looks.get(o, ("k", "-", {"lw": 1.5}))
        ax.step(rho.columns, rho.loc[o], where="post", color=c, ls=ls, label=o, **em)
        ax.fill_between(rho.columns, low.loc[o], high.loc[o], step="post", color=c, alpha=0.12)
    ax.set_xlabel("tau (steps / fastest median steps on the workload)")
    ax.set_ylabel("fraction of workloads within tau")
    ax.set_title("performance profile with 95 % bootstrap bands (seeds resampled)", fontsize=9)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(legend_note(), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
