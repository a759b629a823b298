"""The protocol report's leaderboard: intervals, rank probabilities, ranks only where intervals
separate, identical records shown once; on the committed baselines and on constructed ones."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from suite.report.documents.protocol import write
from suite.report.read.scored import identical_everywhere, study_runs
from suite.report.read.studies import find_studies
from suite.report.read.targets import read_targets

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ROOT / "results" / "baselines"


def test_committed_twins_are_found_on_every_workload_only():
    runs = study_runs(find_studies([BASELINES]), read_targets(BASELINES / "targets.json"))
    assert len(runs) == 72  # 6 optimizers x 4 workloads x 3 seeds: the scored runs
    # torch.optim.AdamW and the in-house AdamW: the same records everywhere; adam differs
    # from them on lm_shakespeare (L2 vs decoupled weight decay), so it is kept apart
    assert identical_everywhere(runs) == {"torch_adamw": "adamw"}
    assert identical_everywhere([r for r in runs if r.task != "lm_shakespeare"]) == {
        "adamw": "adam",
        "torch_adamw": "adam",
    }


def test_a_rerun_folder_outside_its_study_is_refused(tmp_path):
    study = tmp_path / "toy" / "adamw"
    study.mkdir(parents=True)
    meta = json.loads((BASELINES / "mnist_mlp" / "adamw" / "study.json").read_text())
    meta["reruns"][0]["run_dir"] = "../../../elsewhere"
    (study / "study.json").write_text(json.dumps(meta))
    targets = read_targets(BASELINES / "targets.json")
    with pytest.raises(ValueError, match="leaves"):
        study_runs(find_studies([tmp_path]), targets)


@pytest.mark.slow
def test_report_states_intervals_rank_probabilities_and_twins_once(tmp_path):
    """Real report on three committed studies (about 15 s)."""
    roots = [BASELINES / "mnist_mlp" / o for o in ("adamw", "torch_adamw", "sgd")]
    text = write(roots, tmp_path, BASELINES / "targets.json", None, "test")
    board = pd.read_csv(tmp_path / "leaderboard_intervals.csv", index_col="optimizer")
    assert sorted(board.index) == ["adamw", "sgd"]  # torch_adamw is adamw's twin
    assert board.loc["adamw", "same_as"] == "torch_adamw"
    assert (board["low"] <= board["score"]).all() and (board["score"] <= board["high"]).all()
    p = board.filter(like="p_rank_")
    assert ((p.sum(axis=1) - 1).abs() < 1e-9).all()
    section = text.split("## Leaderboard")[1].split("## Performance profiles")[0]
    assert "adamw (= torch_adamw)" in section and "Score [95 % CI]" in section
    assert "| torch_adamw " not in section
    # a rank is stated only where the intervals separate
    for o, r in board.iterrows():
        others = board.drop(index=o)
        separated = ((others["low"] > r["high"]) | (others["high"] < r["low"])).all()
        assert ("-" not in str(r["rank"])) == bool(separated)
    assert (tmp_path / "plots" / "performance_profile_bands.png").stat().st_size > 10_000
