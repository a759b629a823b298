"""The tier report's plots: performance profiles as small multiples, and the cost to tune
per workload; one colour per algorithm family (:mod:`.style`)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from suite.report.compute.tuning_curves import expected_best_curve  # noqa: E402
from suite.report.present.plots.style import colour, legend_note, linestyle  # noqa: E402
from suite.report.read.tier_records import Tier  # noqa: E402


def _looks(tier: Tier) -> dict[str, tuple[str, str]]:
    looks = {}
    for (_, opt, _), s in tier.summaries.items():
        looks.setdefault(
            opt, (colour(s.get("family"), s.get("state_bits")), linestyle(s.get("impl")))
        )
    return looks


def profile_plot(tier: Tier, board, path: Path) -> None:
    """Small multiples: one panel per optimizer, its profile and 95 % band over the
    reference's (grey), so that 13 overlapping step curves are never read off one axis."""
    looks = _looks(tier)
    lo, hi = board.bands
    taus = board.profiles.columns.to_numpy(dtype=float)
    others = [o for o in board.profiles.index if o != tier.reference]
    ncol = 4
    nrow = max(1, math.ceil(len(others) / ncol))
    fig, axes = plt.subplots(
        nrow,
        ncol,
        figsize=(3.0 * ncol, 2.3 * nrow + 0.6),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for ax, opt in zip(axes.flat, others, strict=False):
        if tier.reference in board.profiles.index:
            ref = board.profiles.loc[tier.reference]
            ax.step(taus, ref, where="post", color="0.55", lw=1.0, label=tier.reference)
        c, ls = looks.get(opt, ("k", "-"))
        ax.fill_between(taus, lo.loc[opt], hi.loc[opt], color=c, alpha=0.2, step="post")
        ax.step(taus, board.profiles.loc[opt], where="post", color=c, ls=ls, lw=1.8, label=opt)
        ax.set_title(opt, fontsize=8, color=c)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(others) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("tau (steps / fastest)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("workloads within tau", fontsize=8)
    fig.suptitle(
        f"performance profiles (grey: {tier.reference}); bands: 95 % seed bootstrap\n"
        + legend_note(),
        fontsize=7,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tuning_plot(tier: Tier, task: str, path: Path) -> None:
    looks, target = _looks(tier), tier.workloads[task].target
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for opt in tier.optimizers:
        values = [t.value for t in tier.trials if t.task == task and t.optimizer == opt]
        if not np.isfinite(values).any():
            continue
        curve = expected_best_curve(values, direction=target.direction, n_boot=300)
        c, ls = looks.get(opt, ("k", "-"))
        ax.plot(curve.ks, curve.mean, color=c, ls=ls, label=opt)
        ax.fill_between(curve.ks, curve.low, curve.high, color=c, alpha=0.08)
    ax.axhline(target.value, color="k", lw=0.8, ls=":", label="target")
    ax.set_xlabel("trials")
    ax.set_ylabel(f"expected best {target.metric}")
    ax.set_title(f"{task}: cost to tune (Dodge et al. 2019), bands: trial bootstrap", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
