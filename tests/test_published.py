"""suite.report.published: our per-epoch test curves against a published reference."""

from __future__ import annotations

import pandas as pd
import pytest

from suite.record import read_jsonl
from suite.report import published


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    from tests.conftest import run_suite

    root = tmp_path_factory.mktemp("pub")
    for seed in (0, 1, 2):
        run_suite(
            "task=toy", "optimizer=sgd", "logger=none", "progress=none", "steps=40",
            "eval_every=20", f"seed={seed}", run_dir=root / f"s{seed}",
        )  # fmt: skip
    return root


def reference_like(root, shift: float) -> pd.DataFrame:
    """A reference whose epoch-1 mean is ours + ``shift`` (std 0.01, n 10)."""
    vals = []
    for d in sorted(root.iterdir()):
        ev = [e for e in read_jsonl(d / "metrics.jsonl") if e["event"] == "eval"][0]
        vals.append((ev["test/acc"], ev["test/loss"]))
    acc, loss = (sum(v[i] for v in vals) / len(vals) for i in (0, 1))
    return pd.DataFrame(
        [dict(optimizer="sgd", epoch=1, n=10, test_acc_mean=acc + shift, test_acc_std=0.01,
              test_loss_mean=loss, test_loss_std=0.01)]
    )  # fmt: skip


@pytest.mark.parametrize("shift, verdict", [(0.0, "inconclusive"), (0.2, "differ")])
def test_comparison_verdict(toy_runs, tmp_path, shift, verdict):
    ref = tmp_path / "ref.csv"
    reference_like(toy_runs, shift).to_csv(ref, index=False)
    out = tmp_path / "out"
    rc = published.main(
        [str(toy_runs), "--reference", str(ref), "--steps-per-epoch", "20",
         "--label", "sgd=optimizer:sgd", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    table = pd.read_csv(out / "comparison.csv")
    assert len(table) == 1 and int(table.acc_count[0]) == 3 and table.epoch[0] == 1
    assert table.acc_z[0] == pytest.approx(-shift / 0.01, abs=1e-6)
    assert table.verdict[0].startswith(verdict)
    assert table.acc_margin[0] == pytest.approx(0.01)  # +-1 of their seed std
    # one row, two metrics: Holm doubles the smaller raw p
    lo = min(table.acc_p[0], table.loss_p[0])
    assert min(table.acc_p_holm[0], table.loss_p_holm[0]) == pytest.approx(min(1, 2 * lo))
    assert f"| {verdict}" in (out / "comparison.md").read_text()
    ours = pd.read_csv(out / "ours_per_epoch.csv")
    assert sorted(ours.seed.unique()) == [0, 1, 2] and sorted(ours.epoch.unique()) == [1, 2]


def test_no_match_and_bad_label_exit_nonzero(toy_runs, tmp_path):
    ref = tmp_path / "ref.csv"
    reference_like(toy_runs, 0.0).to_csv(ref, index=False)
    args = [
        str(toy_runs),
        "--reference",
        str(ref),
        "--steps-per-epoch",
        "20",
        "--out",
        str(tmp_path),
    ]
    assert published.main([*args, "--label", "sgd=optimizer:adam"]) == 1
    assert published.main([*args, "--label", "nonsense"]) == 2
