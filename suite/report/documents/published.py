"""Our per-epoch test curves next to a published reference, with a verdict per epoch.

    python -m suite.report.documents.published RUNS... --reference results/deepobs/deepobs_baselines_fmnist_2c2d.csv \
        --steps-per-epoch 390 --out results/deepobs

The reference is a CSV with one row per (optimizer, epoch): ``n``, ``test_acc_mean``,
``test_acc_std`` (sample std over its seeds), ``test_loss_mean``, ``test_loss_std``.
Each run record is matched to a reference optimizer by ``--label`` rules
(``<name>=<optimizer>:<hparam>=<value>``...). For every epoch and metric we report our mean and sample std over seeds, the
reference's, and the difference d = ours - theirs in units of the reference's seed std
with its 90 % Welch interval. Two families of tests, each Holm-adjusted over every
(optimizer, epoch, metric) row of the table, fixed before the data are read:

- **differs**: Welch's two-sided t-test from the summary statistics, adjusted p < 0.05;
- **equivalent**: the two one-sided Welch tests (TOST) that |d| < margin, with the margin
  stated up front as ``--margin-sd`` of the reference's seed std (default 1, issue 19),
  adjusted p < 0.05 (equivalently: the 90 % interval inside +-margin, before adjustment);
- else **inconclusive**: neither a difference nor equivalence is shown at these n.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from suite.record import atomic_write_text
from suite.report.compute.claims import ALPHA, holm
from suite.report.read.curves import METRICS, run_curves


def label_runs(curves: pd.DataFrame, labels: dict[str, dict]) -> pd.Series:
    """The reference optimizer each row belongs to, by the first rule it matches."""

    def label(row) -> str | None:
        for name, rule in labels.items():
            if all(str(row.get(k)) == str(v) for k, v in rule.items()):
                return name
        return None

    return curves.apply(label, axis=1)


def _welch(m1, s1, n1, m2, s2, n2) -> tuple[np.ndarray, np.ndarray]:
    """(standard error, Welch-Satterthwaite degrees of freedom) of m1 - m2."""
    a, b = s1**2 / n1, s2**2 / n2
    return np.sqrt(a + b), (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))


def seeds_to_decide(d, s_ours, s_theirs, n_theirs, margin, family: int) -> int | None:
    """Our seeds at which this comparison would likely be decided (power 0.8, Holm over
    ``family``), their side fixed: equivalence where |d| < margin, else a difference, from
    se^2 = s_ours^2 / n + s_theirs^2 / n_theirs (normal approximation). None where no n
    would: their own n leaves too wide an interval, or d sits on the margin."""
    alpha = ALPHA / max(family, 1)
    if abs(d) < margin:
        z, room = stats.norm.ppf(1 - alpha) + stats.norm.ppf(0.9), margin - abs(d)
    else:
        z, room = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(0.8), abs(d)
    left = (room / z) ** 2 - s_theirs**2 / n_theirs  # what our term may use
    if not (left > 0 and np.isfinite(left)):
        return None
    return max(2, int(np.ceil(s_ours**2 / left)))


def compare(curves: pd.DataFrame, reference: pd.DataFrame, margin_sd: float = 1.0) -> pd.DataFrame:
    """One row per (label, epoch) matched in the reference: both sides' statistics, and per
    metric the difference in their-std units with its 90 % interval, Welch's p, the TOST p
    at ``margin_sd`` of their std, both Holm-adjusted over the table, and the verdict."""
    if not (margin_sd > 0 and np.isfinite(margin_sd)):
        raise ValueError(f"invalid --margin-sd {margin_sd!r}: expected a positive number")
    ours = (
        curves.groupby(["label", "epoch"])[list(METRICS)]
        .agg(["mean", "std", "count"])
        .reset_index()
    )
    ours.columns = ["_".join(c).strip("_") for c in ours.columns]
    merged = ours.merge(reference, left_on=["label", "epoch"], right_on=["optimizer", "epoch"])
    for m in METRICS:
        col = lambda name: merged[name].to_numpy(dtype=float)  # noqa: E731
        ours_stats = (col(f"{m}_mean"), col(f"{m}_std"), col(f"{m}_count"))
        theirs = (col(f"test_{m}_mean"), col(f"test_{m}_std"), col("n"))
        margin = margin_sd * theirs[1]
        diff = ours_stats[0] - theirs[0]
        _, p = stats.ttest_ind_from_stats(*ours_stats, *theirs, equal_var=False)
        lower = stats.ttest_ind_from_stats(  # H0: d <= -margin
            ours_stats[0] + margin, *ours_stats[1:], *theirs, equal_var=False, alternative="greater"
        ).pvalue
        upper = stats.ttest_ind_from_stats(  # H0: d >= +margin
            ours_stats[0] - margin, *ours_stats[1:], *theirs, equal_var=False, alternative="less"
        ).pvalue
        se, df = _welch(*ours_stats, *theirs)
        half = stats.t.ppf(0.95, df) * se
        merged[f"{m}_p"] = p
        merged[f"{m}_z"] = diff / theirs[1]
        merged[f"{m}_z_lo"], merged[f"{m}_z_hi"] = (
            (diff - half) / theirs[1],
            (diff + half) / theirs[1],
        )
        merged[f"{m}_p_tost"] = np.maximum(lower, upper)
    for kind in ("p", "p_tost"):  # one family per kind: every row and metric of the table
        flat = np.concatenate([merged[f"{m}_{kind}"].to_numpy(dtype=float) for m in METRICS])
        adjusted = np.asarray(holm(flat)).reshape(len(METRICS), len(merged))
        for k, m in enumerate(METRICS):
            merged[f"{m}_{kind}_holm"] = adjusted[k]
    for m in METRICS:
        merged[f"{m}_seeds_to_decide"] = [
            seeds_to_decide(d * sd, s1, sd, n2, margin_sd * sd, 2 * len(merged))
            for d, s1, sd, n2 in zip(
                merged[f"{m}_z"],
                merged[f"{m}_std"],
                merged[f"test_{m}_std"],
                merged["n"],
                strict=True,
            )
        ]
        merged[f"{m}_verdict"] = [
            "differs" if pd_ < ALPHA else "equivalent" if pt < ALPHA else "inconclusive"
            for pd_, pt in zip(merged[f"{m}_p_holm"], merged[f"{m}_p_tost_holm"], strict=True)
        ]
    merged["margin_sd"] = margin_sd
    return merged


def _need(g) -> str:
    if g("verdict") != "inconclusive":
        return ""
    n = g("seeds_to_decide")
    if pd.isna(n):
        return " (no n of ours decides it: their seeds alone leave the interval too wide)"
    return f" (~{int(n)} seeds would decide)"


def markdown(table: pd.DataFrame) -> str:
    margin = float(table["margin_sd"].iloc[0]) if len(table) else 1.0
    lines = [
        f"Equivalence margin, stated before the data: +-{margin:g} of DeepOBS's seed std. "
        "d = (ours - theirs) / their std, [90 % Welch interval]; p: Welch two-sided; "
        "p_eq: TOST; both Holm-adjusted over the table's rows and metrics. Where inconclusive: "
        "our seeds that would likely decide it (power 0.8, their n fixed).\n",
        "| optimizer | epoch | ours test acc (n) | DeepOBS test acc (n) | d acc [90 %] | p (Holm) | p_eq (Holm) | acc | ours test loss | DeepOBS test loss | d loss [90 %] | p (Holm) | p_eq (Holm) | loss |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        cells = []
        for m in METRICS:
            g = lambda name: getattr(r, f"{m}_{name}")  # noqa: B023, E731
            cells.append(
                f"{g('z'):+.2f} [{g('z_lo'):+.2f}, {g('z_hi'):+.2f}] | {g('p'):.3f} ({g('p_holm'):.3f}) "
                f"| {g('p_tost'):.3f} ({g('p_tost_holm'):.3f}) | {g('verdict')}{_need(g)}"
            )
        lines.append(
            f"| {r.label} | {r.epoch} | {r.acc_mean:.4f} ± {r.acc_std:.4f} ({r.acc_count}) "
            f"| {r.test_acc_mean:.4f} ± {r.test_acc_std:.4f} ({r.n}) | {cells[0]} "
            f"| {r.loss_mean:.4f} ± {r.loss_std:.4f} | {r.test_loss_mean:.4f} ± {r.test_loss_std:.4f} "
            f"| {cells[1]} |"
        )
    return "\n".join(lines) + "\n"


def parse_label(text: str) -> tuple[str, dict]:
    """``sgd=optimizer:sgd,hp.momentum:0`` -> ("sgd", {"optimizer": "sgd", "hp.momentum": "0"})."""
    name, _, rule = text.partition("=")
    if not name or not rule:
        raise ValueError(f"invalid --label {text!r}; expected NAME=KEY:VALUE[,KEY:VALUE...]")
    return name, dict(kv.split(":", 1) for kv in rule.split(","))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="*", type=Path, help="run folders or folders holding them")
    ap.add_argument("--ours", type=Path, help="instead of runs: a committed ours_per_epoch.csv")
    ap.add_argument("--reference", type=Path, required=True)
    ap.add_argument("--steps-per-epoch", type=int, required=True)
    ap.add_argument("--label", action="append", default=[], help="NAME=KEY:VALUE,... (repeat)")
    ap.add_argument("--margin-sd", type=float, default=1.0, help="equivalence margin")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if not (args.margin_sd > 0 and np.isfinite(args.margin_sd)):
        print(f"error: invalid --margin-sd {args.margin_sd}: expected > 0", file=sys.stderr)
        return 2
    try:
        labels = dict(parse_label(t) for t in args.label)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.ours is not None:  # the per-run values as committed: labels already applied
        curves = pd.read_csv(args.ours)
    else:
        dirs = sorted({p.parent for r in args.runs for p in r.rglob("summary.json")})
        curves = run_curves(dirs, args.steps_per_epoch)
        if not curves.empty:
            curves["label"] = label_runs(curves, labels)
            curves = curves.dropna(subset=["label"])
    if curves.empty:
        print(
            f"error: no finished run with per-epoch evaluations under {args.runs or args.ours}",
            file=sys.stderr,
        )
        return 1
    table = compare(curves, pd.read_csv(args.reference), args.margin_sd)
    args.out.mkdir(parents=True, exist_ok=True)
    per_run = curves.drop(columns=["run"], errors="ignore").to_csv(index=False)
    if args.ours is None or args.ours.resolve() != (args.out / "ours_per_epoch.csv").resolve():
        atomic_write_text(args.out / "ours_per_epoch.csv", per_run)
    atomic_write_text(args.out / "comparison.csv", table.to_csv(index=False))
    atomic_write_text(args.out / "comparison.md", markdown(table))
    print(markdown(table))
    if table.empty:
        print("error: no run matched a reference optimizer at a reference epoch", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
