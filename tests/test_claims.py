"""Known answers for the statistics of claims, on real record folders written into tmp_path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.special import beta

from suite.record import SUMMARY_KEYS, append_jsonl, write_json
from suite.report.compute.claims import family_verdicts, holm, paired, seeds_to_decide, tost
from suite.report.compute.reach import reach, target_consistency
from suite.report.read.scored import by_seed, identical_groups, scored_runs
from suite.report.read.targets import Target, TimeToTarget, read_targets

TASK = "toy"
TARGET = Target("val/acc", 0.9, "max")
STEPS = (100, 200, 300, 400)


def write_run(folder: Path, optimizer: str, seed: int, val: list[float], test_shift=0.0):
    """A real run record: config, env, metrics.jsonl evaluations, summary (with a lying steps_to_target)."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"optimizer: {optimizer}\nseed: {seed}\n")
    write_json(folder / "env.json", {})
    for step, v in zip(STEPS, val, strict=True):
        append_jsonl(
            folder / "metrics.jsonl",
            {
                "event": "eval",
                "step": step,
                "elapsed_s": 1.0 * step,
                "val/acc": v,
                "test/acc": v - 0.01 + test_shift,
            },
        )
    summary = dict.fromkeys(SUMMARY_KEYS)
    summary.update(
        status="ok",
        task=TASK,
        optimizer=optimizer,
        seed=seed,
        steps=STEPS[-1],
        max_steps=STEPS[-1],
        steps_to_target=1,
        target={"metric": "val/acc", "value": 0.5, "direction": "max"},
    )
    write_json(folder / "summary.json", summary)


def curve(final: float) -> list[float]:
    return [final - 0.3, final - 0.1, final - 0.02, final]


def campaign(root: Path, finals: dict[str, list[float]], target_runs: int = 2) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    write_json(
        root / "targets.json", {TASK: {"metric": "val/acc", "value": 0.9, "direction": "max"}}
    )
    for s in range(target_runs):  # target-setting runs: excellent, never scored
        write_run(
            root / TASK / "target" / f"s{1001 + s}", "torch_adamw_fused", 1001 + s, curve(0.99)
        )
    for opt, values in finals.items():
        for seed, final in enumerate(values, 1):
            write_run(root / TASK / opt / "reruns" / f"s{seed}", opt, seed, curve(final))
    return read_targets(root / "targets.json")


def verdict_of(root: Path, targets, candidate: str, margin=0.005):
    runs = scored_runs(root, targets)
    ref = {TASK: by_seed(runs, TASK, "adamw")}
    cands = {candidate: {TASK: by_seed(runs, TASK, candidate)}}
    return family_verdicts(cands, ref, {TASK: margin}, {TASK: "max"})[candidate][0]


def test_identical_optimizers_no_rank_and_equivalence(tmp_path):
    rng = np.random.default_rng(0)
    base = list(0.9 + 0.01 * rng.standard_normal(12))
    twin = [b + 0.0005 * e for b, e in zip(base, rng.standard_normal(12), strict=True)]
    targets = campaign(tmp_path, {"adamw": base, "same": base, "near": twin})
    runs = scored_runs(tmp_path, targets)
    assert identical_groups(runs, TASK) == {"same": "adamw"}
    v = verdict_of(tmp_path, targets, "near")
    assert v.word == "equivalent within margin", v.line()
    assert v.comparison.ci[0] < 0 < v.comparison.ci[1]


def test_constructed_faster_one_is_better(tmp_path):
    rng = np.random.default_rng(1)
    base = list(0.85 + 0.01 * rng.standard_normal(8))
    better = [b + 0.03 + 0.003 * e for b, e in zip(base, rng.standard_normal(8), strict=True)]
    targets = campaign(tmp_path, {"adamw": base, "fast": better})
    v = verdict_of(tmp_path, targets, "fast")
    assert v.word == "better", v.line()
    assert v.comparison.ci[0] > 0 and v.p_holm < 0.05


def test_three_seeds_are_inconclusive_and_say_how_many_would_decide(tmp_path):
    targets = campaign(tmp_path, {"adamw": [0.85, 0.86, 0.84], "fast": [0.88, 0.90, 0.87]})
    v = verdict_of(tmp_path, targets, "fast")
    assert v.word == "inconclusive"  # 3 seeds: the smallest sign-flip p is 0.25
    assert v.seeds_needed is not None and 2 / 2**v.seeds_needed < 0.05
    assert "smallest possible p is 0.25" in v.line()


def test_misses_are_reach_rates_not_censored_means(tmp_path):
    targets = campaign(tmp_path, {"adamw": [0.95, 0.95, 0.8, 0.8], "slow": [0.8] * 4})
    runs = scored_runs(tmp_path, targets)
    slow = reach([r.ttt for r in runs if r.optimizer == "slow"])
    assert (slow.k, slow.n, slow.steps_reached, slow.km_median) == (0, 4, (), None)
    assert slow.rate_ci[0] == 0 and 0.5 < slow.rate_ci[1] < 0.7  # Clopper-Pearson 0/4
    ref = reach([r.ttt for r in runs if r.optimizer == "adamw"])
    # reached at step 300 (0.95 - 0.02 >= 0.9) from metrics.jsonl; the summary's 1 is ignored
    assert (ref.k, ref.n, ref.steps_reached) == (2, 4, (300, 300))
    assert "reached 2/4" in ref.line() and "median 300" in ref.line()


def test_a_median_with_every_run_reached_has_a_finite_interval():
    """Nothing censored: the KM band is undefined where the curve reaches 0, so the median's
    interval is the order statistics' (n = 10: the 2nd and 9th), never an infinite bound."""
    steps = [39, 39, 39, 52, 52, 65, 65, 78, 91, 104]
    r = reach([TimeToTarget(s, True) for s in steps])
    assert r.km_median == 52 and r.km_ci == (39.0, 91.0)
    censored = reach([TimeToTarget(s, True) for s in steps[:6]] + [TimeToTarget(104, False)] * 4)
    assert censored.km_ci[1] == math.inf  # a censored curve that never falls far: unbounded


def test_holm_adjusts_raw_significance_away():
    raw = [0.03, 0.04, 0.5]
    assert all(p < 0.05 for p in raw[:2])
    adjusted = holm(raw)
    assert adjusted == pytest.approx([0.09, 0.09, 0.5])
    assert holm([0.01, math.nan]) == [0.01, pytest.approx(math.nan, nan_ok=True)]


def test_holm_in_a_family_of_workload_comparisons(tmp_path):
    rng = np.random.default_rng(3)
    base = list(0.85 + 0.01 * rng.standard_normal(6))
    up = [b + 0.02 + 0.001 * e for b, e in zip(base, rng.standard_normal(6), strict=True)]
    targets = campaign(tmp_path, {"adamw": base, "a": up, "b": up[:3] + base[3:]})
    runs = scored_runs(tmp_path, targets)
    ref = {TASK: by_seed(runs, TASK, "adamw")}
    cands = {o: {TASK: by_seed(runs, TASK, o)} for o in ("a", "b")}
    out = family_verdicts(cands, ref, {TASK: 0.005}, {TASK: "max"})
    a = out["a"][0]
    assert a.comparison.p == pytest.approx(2 / 64) and a.p_holm == pytest.approx(4 / 64)
    assert a.comparison.p < 0.05 <= a.p_holm and a.word != "better"


def test_target_setting_runs_are_never_scored(tmp_path):
    targets = campaign(tmp_path, {"adamw": [0.9, 0.91]}, target_runs=3)
    runs = scored_runs(tmp_path, targets)
    assert {r.optimizer for r in runs} == {"adamw"} and len(runs) == 2
    assert all("target" not in r.folder.parts for r in runs)


def test_corrupting_test_metrics_moves_nothing(tmp_path):
    finals = {"adamw": [0.85, 0.86, 0.84, 0.85, 0.87, 0.86], "x": [0.9, 0.88, 0.89, 0.9, 0.91, 0.9]}
    targets = campaign(tmp_path / "a", finals)
    before = verdict_of(tmp_path / "a", targets, "x")
    for path in (tmp_path / "a").rglob("metrics.jsonl"):
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({**e, "test/acc": 0.0}) + "\n" for e in lines))
    after = verdict_of(tmp_path / "a", targets, "x")
    assert before.line() == after.line()


def test_paired_tost_and_power_known_values():
    c = paired({1: 1.0, 2: 2.0, 3: 3.0}, {1: 1.0, 2: 2.0, 3: 3.0})
    assert c.mean_diff == 0 and c.p == 1.0 and c.ci == (0.0, 0.0)
    loss = paired({1: 1.0, 2: 1.1}, {1: 1.2, 2: 1.2}, direction="min")
    assert loss.mean_diff == pytest.approx(0.15)  # lower loss is better
    assert tost([0.0, 0.001, -0.001, 0.0005], 0.01) < 0.05
    assert tost([0.02, 0.03, 0.025], 0.01) > 0.5
    assert seeds_to_decide(0.0, 0.01, 0.005) == 35  # ((1.645 + 1.282) * 2) ** 2 = 34.3
    assert seeds_to_decide(0.1, 0.01, 0.005) == 6  # the sign-flip floor: 2 / 2^6 < 0.05
    # a difference at Holm's strictest level: ((1.96 + 0.842) * 2) ** 2 = 31.4 alone,
    # ((2.865 + 0.842) * 2) ** 2 = 54.9 as one of 12 (z at 1 - 0.05 / 24)
    assert seeds_to_decide(0.01, 0.02, 0.005) == 32
    assert seeds_to_decide(0.01, 0.02, 0.005, family_size=12) == 55
    with pytest.raises(ValueError, match="margin"):
        tost([0.0, 0.1], 0.0)


def test_objective_reads_the_committed_target_not_the_stale_summary(tmp_path):
    from suite.record import read_summary
    from suite.tune.objective import against_target, objective_value

    write_run(tmp_path / "t", "adamw", 1, curve(0.95))  # summary: provisional 0.5, "step 1"
    stale = read_summary(tmp_path / "t")
    assert objective_value(stale) == pytest.approx(1 / 400)
    fresh = against_target(
        stale, tmp_path / "t", {"metric": "val/acc", "value": 0.9, "direction": "max"}
    )
    assert fresh["steps_to_target"] == 300 and objective_value(fresh) == pytest.approx(0.75)
    missed = against_target(
        stale, tmp_path / "t", {"metric": "val/acc", "value": 0.99, "direction": "max"}
    )
    assert missed["steps_to_target"] is None and objective_value(missed) > 1
    with pytest.raises(ValueError, match="test/acc"):
        against_target(
            stale, tmp_path / "t", {"metric": "test/acc", "value": 0.9, "direction": "max"}
        )


def _ttt(step):
    from suite.report.read.targets import TimeToTarget

    return TimeToTarget(step, step is not None) if step else TimeToTarget(400, False)


def test_leaderboard_ranks_only_where_intervals_separate():
    from suite.report.compute.leaderboard import leaderboard

    rng = np.random.default_rng(5)
    times = {}
    for opt, base in (("adamw", 300), ("twin", 300), ("fast", 100)):
        times[opt] = {
            wl: {s: _ttt(int(base + 10 * rng.integers(0, 3))) for s in range(1, 6)}
            for wl in ("w1", "w2", "w3")
        }
    times["never"] = {wl: {s: _ttt(None) for s in range(1, 6)} for wl in ("w1", "w2", "w3")}
    board = leaderboard(times, n_boot=200)
    assert board.table.index[0] == "fast" and board.table.loc["fast", "rank"] == "1"
    assert board.rank_probability.loc["fast", 1] > 0.95
    assert board.table.loc["adamw", "rank"] == board.table.loc["twin", "rank"] == "2-3"
    assert board.table.loc["never", "score"] == 0 and board.table.loc["never", "rank"] == "4"
    lo, hi = board.bands
    assert (lo.to_numpy() <= board.profiles.loc[lo.index].to_numpy() + 1e-12).all()
    assert (hi.to_numpy() >= lo.to_numpy()).all()


def test_expected_best_after_k_trials_and_sensitivity():
    from suite.report.compute.tuning_curves import expected_best, expected_best_curve, sensitivity

    pool = [0.1, 0.5, 0.9]
    e = expected_best(pool, [1, 2, 100])
    assert e[0] == pytest.approx(0.5)  # one trial: the pool mean
    assert e[1] == pytest.approx(0.1 / 9 + 0.5 * 3 / 9 + 0.9 * 5 / 9)  # best of two
    assert e[2] == pytest.approx(0.9, abs=1e-6)
    loss = expected_best([3.0, 1.0, float("nan")], [1, 50], direction="min")
    assert loss[1] == pytest.approx(1.0, abs=1e-6)
    assert loss[0] == pytest.approx(7 / 3)  # the diverged trial counts as the worst, 3.0
    c = expected_best_curve(pool, n_boot=200)
    assert (c.low <= c.mean + 1e-12).all() and (c.mean <= c.high + 1e-12).all()
    s = sensitivity([0.9, 0.895, 0.5, float("nan")], margin=0.01)
    assert s == {"within_margin": 0.5, "diverged": 0.25, "trials": 4}


def test_workload_verdict_lines(tmp_path):
    from suite.report.compute.verdicts import workload_verdicts
    from suite.report.documents.verdicts import write_verdicts

    rng = np.random.default_rng(7)
    base = list(0.85 + 0.01 * rng.standard_normal(8))
    fast = [b + 0.08 for b in base]
    campaign(tmp_path, {"torch_adamw_fused": base, "fast": fast})
    lines = workload_verdicts(tmp_path, tmp_path, tmp_path / "targets.json", "fast")
    assert len(lines) == 1  # one line per workload
    assert lines[0].startswith("toy: better, effect best val/acc +0.08 [+0.08, +0.08]")
    assert "; reach 8/8 vs " in lines[0]
    assert "verdicts" in write_verdicts(lines, tmp_path, "fast", "torch_adamw_fused").name
    none = workload_verdicts(tmp_path, tmp_path, tmp_path / "targets.json", "absent")
    assert none == ["no workload has scored runs of both 'absent' and 'torch_adamw_fused'"]


def test_an_effect_of_float_noise_reads_zero():
    from suite.report.compute.claims import paired

    c = paired({1: 0.1 + 0.2, 2: 0.3, 3: 0.7}, {1: 0.3, 2: 0.3, 3: 0.7})  # d[0] = 5.6e-17
    assert c.mean_diff == 0.0 and f"{c.mean_diff:+.4g}" == "+0"


def test_a_reference_that_misses_its_own_target_everywhere_flags_the_target():
    """k of n scored seeds beat the median of m target seeds: BetaBinomial(n, (m+1)/2, (m+1)/2)
    when all seeds share one distribution. 0/10 against a median of 5 (lm_shakespeare in the
    CPU tier) has probability B(3, 13) / B(3, 3) = 0.022 on each side; half reaching is
    what is expected. Checked against the closed form and a simulation."""
    one_side = beta(3, 13) / beta(3, 3)
    assert target_consistency(0, 10, 5) == pytest.approx(2 * one_side)
    assert target_consistency(10, 10, 5) == pytest.approx(2 * one_side)  # symmetric
    assert target_consistency(5, 10, 5) == pytest.approx(1.0)
    assert 0.15 < target_consistency(1, 10, 5) < target_consistency(3, 10, 5) < 1.0
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(20000, 15))
    k = (draws[:, :10] < np.median(draws[:, 10:], axis=1, keepdims=True)).sum(axis=1)
    assert np.mean(k == 0) == pytest.approx(one_side, abs=0.004)
