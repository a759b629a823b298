"""Per-epoch test curves of run records, for the comparison with a published reference
(:mod:`suite.report.documents.published`): one row per (run, epoch) at every evaluation
on an epoch boundary (``step % steps_per_epoch == 0``). Runs that did not end ``ok`` are
left out; the summary is read through :func:`suite.record.read_summary`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from suite.record import read_jsonl, read_summary

METRICS = ("acc", "loss")  # test/<metric> at each epoch


def run_curves(run_dirs: list[Path], steps_per_epoch: int) -> pd.DataFrame:
    """One row per (run, epoch): optimizer, hparams, seed, test/acc, test/loss."""
    rows = []
    for d in run_dirs:
        summary = read_summary(d)  # checked against the Summary contract
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
