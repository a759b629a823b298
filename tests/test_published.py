"""suite.report.documents.published: our per-epoch test curves against a published reference."""

from __future__ import annotations

import pandas as pd
import pytest

from suite.record import read_jsonl
from suite.report.documents import published


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


@pytest.mark.parametrize(
    "shift, verdicts", [(0.0, {"equivalent", "inconclusive"}), (0.2, {"differs"})]
)
def test_comparison_verdict(toy_runs, tmp_path, shift, verdicts):
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
    assert table.acc_verdict[0] in verdicts
    assert f"| {table.acc_verdict[0]}" in (out / "comparison.md").read_text()
    ours = pd.read_csv(out / "ours_per_epoch.csv")
    assert sorted(ours.seed.unique()) == [0, 1, 2] and sorted(ours.epoch.unique()) == [1, 2]


def _stats(rows):
    """Per-run values of ours for label 'a' at epoch 1, and a reference row per case."""
    curves, ref = [], []
    for label, ours, theirs in rows:
        curves += [dict(label=label, epoch=1, acc=a, loss=1 - a) for a in ours]
        ref.append(dict(optimizer=label, epoch=1, **theirs))
    return pd.DataFrame(curves), pd.DataFrame(ref)


def test_equivalence_needs_tost_and_a_raw_p_can_fail_holm():
    many = [0.80 + 0.001 * (k % 5 - 2) for k in range(40)]  # mean 0.80, sd ~0.0014, n 40
    same = dict(
        n=40, test_acc_mean=0.80, test_acc_std=0.01, test_loss_mean=0.20, test_loss_std=0.01
    )
    # raw Welch p ~0.03 on acc, but six tests in the family: Holm lifts it above 0.05
    edge = dict(
        n=10, test_acc_mean=0.81, test_acc_std=0.01, test_loss_mean=0.19, test_loss_std=0.01
    )
    few = [0.80, 0.81, 0.79, 0.80, 0.805, 0.795]
    curves, ref = _stats([("a", many, same), ("b", few, edge), ("c", few, same)])
    t = published.compare(curves, ref, margin_sd=1.0).set_index("label")
    assert t.loc["a", "acc_verdict"] == "equivalent" and t.loc["a", "acc_p_tost_holm"] < 0.05
    assert t.loc["b", "acc_p"] < 0.05 <= t.loc["b", "acc_p_holm"]
    assert t.loc["b", "acc_verdict"] == "inconclusive"
    far = published.compare(curves, ref.assign(test_acc_mean=0.9), margin_sd=1.0)
    assert set(far.acc_verdict) == {"differs"}
    with pytest.raises(ValueError, match="margin-sd"):
        published.compare(curves, ref, margin_sd=0)


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
