"""Our per-epoch test curves next to a published reference, with a verdict per epoch.

    python -m suite.report.published RUNS... --reference results/deepobs/deepobs_baselines_fmnist_2c2d.csv \
        --steps-per-epoch 390 --out results/deepobs

The reference is a CSV with one row per (optimizer, epoch): ``n``, ``test_acc_mean``,
``test_acc_std`` (sample std over its seeds), ``test_loss_mean``, ``test_loss_std``.
Each run record is matched to a reference optimizer by ``--label`` rules
(``<name>=<optimizer>:<hparam>=<value>``...). For every epoch we report our
mean and sample std over seeds, the reference's, the difference in units of
the reference's seed std, and Welch's two-sided t-test from the summary
statistics; the verdict "agree" means p >= 0.05 (no detectable difference at
our n and theirs), "differ" otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from scipy import stats

from suite.record import read_jsonl

METRICS = ("acc", "loss")


def run_curves(run_dirs: list[Path], steps_per_epoch: int) -> pd.DataFrame:
    """One row per (run, epoch): optimizer, hparams, seed, test/acc, test/loss."""
    rows = []
    for d in run_dirs:
        summary = json.loads((d / "summary.json").read_text())
        if summary.get("status") != "ok":
            continue
        for ev in read_jsonl(d / "metrics.jsonl"):
            if ev.get("event") == "eval" and ev["step"] % steps_per_epoch == 0:
                rows.append(
                    {
                        "run": str(d),
                        "optimizer": summary["optimizer"],
                        **{
                            f"hp.{k}": v
                            for k, v in summary["hparams"].items()
                            if not isinstance(v, list)
                        },
                        "seed": summary["seed"],
                        "epoch": ev["step"] // steps_per_epoch,
                        **{m: ev[f"test/{m}"] for m in METRICS},
                    }
                )
    return pd.DataFrame(rows)


def label_runs(curves: pd.DataFrame, labels: dict[str, dict]) -> pd.Series:
    """The reference optimizer each row belongs to, by the first rule it matches."""

    def label(row) -> str | None:
        for name, rule in labels.items():
            if all(str(row.get(k)) == str(v) for k, v in rule.items()):
                return name
        return None

    return curves.apply(label, axis=1)


def compare(curves: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    ours = (
        curves.groupby(["label", "epoch"])[list(METRICS)]
        .agg(["mean", "std", "count"])
        .reset_index()
    )
    ours.columns = ["_".join(c).strip("_") for c in ours.columns]
    merged = ours.merge(reference, left_on=["label", "epoch"], right_on=["optimizer", "epoch"])
    for m in METRICS:
        col = lambda name: merged[name].to_numpy(dtype=float)  # noqa: E731
        _, p = stats.ttest_ind_from_stats(
            col(f"{m}_mean"),
            col(f"{m}_std"),
            col(f"{m}_count"),
            col(f"test_{m}_mean"),
            col(f"test_{m}_std"),
            col("n"),
            equal_var=False,
        )
        merged[f"{m}_p"] = p
        merged[f"{m}_z"] = (merged[f"{m}_mean"] - merged[f"test_{m}_mean"]) / merged[
            f"test_{m}_std"
        ]
    return merged


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "| optimizer | epoch | ours test acc (n) | DeepOBS test acc (n) | diff / their std | p | ours test loss | DeepOBS test loss | diff / their std | p | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        verdict = "agree" if min(r.acc_p, r.loss_p) >= 0.05 else "differ"
        lines.append(
            f"| {r.label} | {r.epoch} | {r.acc_mean:.4f} ± {r.acc_std:.4f} ({r.acc_count}) "
            f"| {r.test_acc_mean:.4f} ± {r.test_acc_std:.4f} ({r.n}) | {r.acc_z:+.2f} | {r.acc_p:.3f} "
            f"| {r.loss_mean:.4f} ± {r.loss_std:.4f} | {r.test_loss_mean:.4f} ± {r.test_loss_std:.4f} "
            f"| {r.loss_z:+.2f} | {r.loss_p:.3f} | {verdict} |"
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
    ap.add_argument("runs", nargs="+", type=Path, help="run folders or folders holding them")
    ap.add_argument("--reference", type=Path, required=True)
    ap.add_argument("--steps-per-epoch", type=int, required=True)
    ap.add_argument("--label", action="append", default=[], help="NAME=KEY:VALUE,... (repeat)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        labels = dict(parse_label(t) for t in args.label)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dirs = sorted({p.parent for r in args.runs for p in r.rglob("summary.json")})
    curves = run_curves(dirs, args.steps_per_epoch)
    if curves.empty:
        print(
            f"error: no finished run with per-epoch evaluations under {args.runs}", file=sys.stderr
        )
        return 1
    curves["label"] = label_runs(curves, labels)
    curves = curves.dropna(subset=["label"])
    table = compare(curves, pd.read_csv(args.reference))
    args.out.mkdir(parents=True, exist_ok=True)
    curves.drop(columns=["run"]).to_csv(args.out / "ours_per_epoch.csv", index=False)
    table.to_csv(args.out / "comparison.csv", index=False)
    (args.out / "comparison.md").write_text(markdown(table))
    print(markdown(table))
    if table.empty:
        print("error: no run matched a reference optimizer at a reference epoch", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
