"""Our per-epoch test curves next to a published reference, with a verdict per epoch.

    python -m suite.report.published RUNS... --reference results/deepobs/deepobs_baselines_fmnist_2c2d.csv \
        --steps-per-epoch 390 --out results/deepobs

The reference is a CSV with one row per (optimizer, epoch): ``n``, ``test_acc_mean``,
``test_acc_std`` (sample std over its seeds), ``test_loss_mean``, ``test_loss_std``.
Each run record is matched to a reference optimizer by ``--label`` rules
(``<name>=<optimizer>:<hparam>=<value>``...). For every epoch we report our
mean and sample std over seeds, the reference's, the difference in units of
the reference's seed std, and, from the summary statistics (our seeds and theirs are
different runs, so the design is unpaired; :mod:`suite.report.claims` is for paired runs):

* a difference test: Welch's two-sided t-test (``scipy.stats.ttest_ind_from_stats``),
  Holm-adjusted over the family fixed up front, *every (optimizer, epoch, metric) row of
  this comparison*;
* an equivalence test: TOST at a margin of +-1 of the reference's own seed std, stated
  before the data: ``H01: mu_ours - mu_ref <= -delta`` and ``H02: >= +delta``, each a
  one-sided Welch test on the shifted mean; ``p_TOST = max(p1, p2)``.

Verdict per row: "differ" where the Holm p of either metric is below 0.05; "equivalent
within +-1 std" where both metrics' TOST p are below 0.05; else "inconclusive", with the
seeds of ours that would decide it (:func:`suite.report.claims.seeds_to_decide`, their
mean taken as known).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd
from scipy import stats

from suite.record import read_jsonl, read_summary
from suite.report.claims import ALPHA, holm, seeds_to_decide

METRICS = ("acc", "loss")


def run_curves(run_dirs: list[Path], steps_per_epoch: int) -> pd.DataFrame:
    """One row per (run, epoch): optimizer, hparams, seed, test/acc, test/loss."""
    rows = []
    for d in run_dirs:
        summary = read_summary(d)
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
    col = lambda name: merged[name].to_numpy(dtype=float)  # noqa: E731
    for m in METRICS:
        ours = (col(f"{m}_mean"), col(f"{m}_std"), col(f"{m}_count"))
        theirs = (col(f"test_{m}_mean"), col(f"test_{m}_std"), col("n"))
        delta = theirs[1]  # the margin: +-1 of the reference's seed std
        welch = dict(equal_var=False)
        p = stats.ttest_ind_from_stats(*ours, *theirs, **welch).pvalue
        lo = stats.ttest_ind_from_stats(
            ours[0] + delta, *ours[1:], *theirs, alternative="greater", **welch
        ).pvalue
        hi = stats.ttest_ind_from_stats(
            ours[0] - delta, *ours[1:], *theirs, alternative="less", **welch
        ).pvalue
        merged[f"{m}_p"] = p
        merged[f"{m}_margin"] = delta
        merged[f"{m}_p_tost"] = [max(a, b) for a, b in zip(lo, hi, strict=True)]
        merged[f"{m}_z"] = (ours[0] - theirs[0]) / theirs[1]
    family = holm([*merged["acc_p"], *merged["loss_p"]])
    merged["acc_p_holm"] = family[: len(merged)]
    merged["loss_p_holm"] = family[len(merged) :]
    merged["verdict"] = [_verdict(r) for r in merged.itertuples()]
    return merged


def _verdict(r) -> str:
    if min(r.acc_p_holm, r.loss_p_holm) < ALPHA:
        return "differ"
    if max(r.acc_p_tost, r.loss_p_tost) < ALPHA:
        return "equivalent within ±1 std"
    need = [
        seeds_to_decide(getattr(r, f"{m}_mean") - getattr(r, f"test_{m}_mean"),
                        getattr(r, f"{m}_std"), getattr(r, f"{m}_margin"))
        for m in METRICS
    ]  # fmt: skip
    known = [n for n in need if n is not None]
    return f"inconclusive (~{max(known)} seeds of ours)" if known else "inconclusive"


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "Family: every (optimizer, epoch, metric) row below, Holm-adjusted (Welch's test, "
        "unpaired: their seeds are not ours). Equivalence: TOST at ±1 of DeepOBS's own seed "
        "std, stated before the data. p shown raw / Holm / TOST.",
        "",
        "| optimizer | epoch | ours test acc (n) | DeepOBS test acc (n) | diff / their std | p raw / Holm / TOST | ours test loss | DeepOBS test loss | diff / their std | p raw / Holm / TOST | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.label} | {r.epoch} | {r.acc_mean:.4f} ± {r.acc_std:.4f} ({r.acc_count}) "
            f"| {r.test_acc_mean:.4f} ± {r.test_acc_std:.4f} ({r.n}) | {r.acc_z:+.2f} "
            f"| {_ps(r.acc_p, r.acc_p_holm, r.acc_p_tost)} "
            f"| {r.loss_mean:.4f} ± {r.loss_std:.4f} | {r.test_loss_mean:.4f} ± {r.test_loss_std:.4f} "
            f"| {r.loss_z:+.2f} | {_ps(r.loss_p, r.loss_p_holm, r.loss_p_tost)} | {r.verdict} |"
        )
    return "\n".join(lines) + "\n"


def _ps(p: float, q: float, t: float) -> str:
    return " / ".join(f"{x:.3f}" if math.isfinite(x) else "-" for x in (p, q, t))


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
