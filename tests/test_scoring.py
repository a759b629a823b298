"""Scoring: time to target, performance profiles and their integrated score, targets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from suite.report.compute.scoring import (
    Target,
    calibrate_targets,
    leaderboard,
    profile,
    score,
    time_to,
    times,
)


def test_time_to_target_is_the_first_evaluation_meeting_it():
    curve = [(10, 1.0, 0.5), (20, 2.0, 0.8), (30, 3.0, 0.9)]
    assert time_to(curve, Target("val/acc", 0.8, "max")) == (20, 2.0)
    assert time_to(curve, Target("val/acc", 0.95, "max")) == (math.inf, math.inf)
    assert time_to([(5, 0.5, 2.0), (9, 0.9, 0.4)], Target("val/loss", 0.5, "min")) == (9, 0.9)


def test_profile_and_score_by_hand():
    # a is fastest on w1, b is 2x slower there; b is fastest on w2, a never reaches it
    m = pd.DataFrame({"w1": [100.0, 200.0], "w2": [math.inf, 50.0]}, index=["a", "b"])
    rho = profile(m, np.array([1.0, 2.0, 4.0]))
    assert rho.loc["a"].tolist() == [0.5, 0.5, 0.5]
    assert rho.loc["b"].tolist() == [0.5, 1.0, 1.0]
    s = score(rho)  # trapezoid over [1, 4]: a 0.5; b (0.75 * 1 + 1.0 * 2) / 3
    assert s["a"] == pytest.approx(0.5) and s["b"] == pytest.approx(2.75 / 3)


def _runs(best: dict[str, list[float]], task: str = "w") -> pd.DataFrame:
    rows = []
    for opt, values in best.items():
        for seed, v in enumerate(values, 1):
            # reaches 0.5 at step 10 * (index of the first eval >= 0.5), ends at its best value v
            curve = [(10.0, 1.0, 0.3), (20.0, 2.0, 0.5 if v >= 0.5 else 0.4), (30.0, 3.0, v)]
            rows.append(
                dict(
                    task=task,
                    optimizer=opt,
                    seed=seed,
                    status="ok",
                    metric="val/acc",
                    direction="max",
                    max_steps=30,
                    best_val=v,
                    trials=4,
                    curve=curve,
                )
            )
    return pd.DataFrame(rows)


def test_targets_are_the_best_median_and_rank_the_leaderboard():
    runs = _runs({"a": [0.6, 0.7, 0.9], "b": [0.4, 0.45, 0.95]})
    targets = calibrate_targets(runs)
    assert targets["w"]["value"] == 0.7 and targets["w"]["from"] == "a"
    assert targets["w"]["metric"] == "val/acc"
    board = leaderboard(times(runs, targets))
    assert board["optimizer"].tolist() == ["a", "b"]
    assert board.loc[0, "solved"] == 1 and board.loc[1, "solved"] == 0  # b: 1 of 3 seeds
    assert board.loc[0, "seeds"] == 3 and board.loc[0, "trials"] == 4
