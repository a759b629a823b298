"""The tier's report (suite/report/tier.py) on a real toy campaign: refused while the tier
is incomplete, and once complete its reach rates, memory and verdicts are the records'."""

from __future__ import annotations

import json
import re
import shutil
import statistics

import pytest

from suite import record
from suite.report.documents import tier
from suite.report.read import tier_records

pytestmark = pytest.mark.slow  # a real toy campaign (conftest.toy_tier): about 45-80 s here


def test_an_incomplete_tier_is_refused_naming_what_is_missing(toy_tier, tmp_path, capsys):
    src, raw = toy_tier
    shutil.copytree(src, tmp_path / "tier")
    (tmp_path / "tier/toy/sgd/reruns/s2/summary.json").unlink()  # a rerun still running
    with pytest.raises(ValueError, match=r"not complete \(1 parts missing: toy/sgd/reruns\)"):
        tier_records.load(tmp_path / "tier", raw)
    with pytest.raises(ValueError, match=r"workload 'lm' is not one of \['toy'\]"):
        tier.only(raw, ["lm"])
    assert tier.main([str(tmp_path), "--protocol", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nope' is not one of" in err and "cpu" in err


def _reached_at(run_dir, target):
    """The training seconds of the first evaluation at the target, or None (read here from
    the records, apart from the code under test)."""
    for e in record.read_jsonl(run_dir / "metrics.jsonl"):
        if e.get("event") == "eval" and target.metric in e and target.reached(e[target.metric]):
            return e["elapsed_s"]
    return None


def _reached(run_dir, target):
    return _reached_at(run_dir, target) is not None


def test_the_report_holds_the_records_figures(toy_tier, tmp_path):
    root, raw = toy_tier
    out = tier.write(root, raw, tmp_path / "report", n_boot=200)
    text = (out / "README.md").read_text()
    assert text.count("## How to read this") == 1 and (out / "profile.png").stat().st_size > 0
    assert (out / "tuning-toy.png").stat().st_size > 0
    t = tier_records.load(root, raw)
    target = t.workloads["toy"].target
    committed = json.loads((root / "toy/target/target.json").read_text())
    assert target.value == committed["value"]
    for opt in ("adamw", "sgd"):
        runs = [root / "toy" / opt / "reruns" / f"s{s}" for s in (1, 2, 3)]
        k = sum(_reached(r, target) for r in runs)
        row = next(line for line in text.splitlines() if line.startswith(f"| {opt} | {k}/3 ["))
        assert row  # the convergence row reads k/3 from the records
        seconds = [x for x in (_reached_at(r, target) for r in runs) if x is not None]
        cells = [c.strip() for c in row.split("|")]
        assert cells[5] == (f"{statistics.median(seconds):.3g}" if seconds else "-"), row
        s = record.read_summary(runs[0])
        per_param = s["optimizer_state_bytes"] / s["n_params"]
        assert re.search(rf"\| {opt} \| 32 \| {per_param:.2f} \|", text)
    assert re.search(r"\| adamw \| [^|]+ \| [^|]+ \| reference \|", text)  # generalization
    # the answer: sgd in the one column its generalization verdict names, with its interval
    verdict = re.search(r"\| sgd \| [^|]+ \| [^|]+ \| ([a-z ]+): ([+-]\d\.\d{4} \[[^\]]+\])", text)
    word, interval = verdict.groups()
    answer = next(line for line in text.splitlines() if line.startswith("| toy | toy | test/"))
    cells = answer.split("|")[4:8]  # better, equivalent, worse, inconclusive
    column = list(tier.answers.ANSWER_COLUMNS).index(word)
    assert f"sgd {interval}" in cells[column], (word, answer)
    assert [i for i, c in enumerate(cells) if "sgd" in c] == [column]
    assert "adamw" not in answer  # the reference is not compared with itself
    assert answer.split("|")[8].strip() == "-"  # "Not compared": every run has a test value
    # read across kinds: sgd's row names the same word and difference, and counts it
    across = next(line for line in text.splitlines() if line.startswith("| sgd | "))
    short = "equivalent" if word == "equivalent within margin" else word
    assert across.split("|")[2].strip() == f"{short} {interval.split()[0]}", across
    counted = [int(n) for n in re.search(r"(\d) / (\d) / (\d) of 1", across).groups()]
    assert counted == [short == w for w in ("better", "equivalent", "worse")]
    # the by-study boards (overall and per kind): each study's own best trial
    assert text.count("Tuning luck included") == 1
    # the reference's own reach at the scored seeds, with the p that its target seeds and
    # scored seeds share one distribution (compute.reach.target_consistency)
    budget = next(line for line in text.splitlines() if line.startswith("| toy | toy | "))
    k = re.search(r"\| (\d)/3 \(p ([0-9.]+)\) \|", budget)
    assert k and float(k.group(2)) == pytest.approx(
        tier.target_consistency(int(k.group(1)), 3, 5), abs=0.01
    )
    assert text.count("By study (tuning luck included") == 1
    part = tier.write(root, tier.only(raw, ["toy"]), tmp_path / "part", n_boot=50)
    part_text = (part / "README.md").read_text()
    assert "(a part: 1 of 1 workloads" in part_text
    assert "## Leaderboard, all workloads" not in part_text and "Tuning luck" not in part_text
    by_study = tier.tables.study_board(t, ["toy"], n_boot=50)
    assert set(by_study.table.index) == {"adamw", "sgd"}
    # no target-setting run is among the scored ones
    assert all("target" not in r.folder.parts for r in t.runs)
    assert {r.seed for r in t.runs} == {1, 2, 3}
    # the trials are the studies' trials: 3 studies x 1 trial per optimizer
    assert sorted((x.optimizer, x.study) for x in t.trials) == [
        (o, k) for o in ("adamw", "sgd") for k in range(3)
    ]


def test_the_standard_report_reads_a_tiers_workload_and_points_to_the_tier_report(
    toy_tier, tmp_path
):
    root, _ = toy_tier  # its studies hold trials only: their scored reruns live beside them
    from suite.report.__main__ import main as report_main

    assert report_main([str(root / "toy"), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "tuning study(ies) without scored reruns" in text and "documents.tier" in text
    assert not (tmp_path / "rep" / "protocol").exists()


def test_an_optimizer_with_a_run_without_a_test_value_is_named_not_dropped(toy_tier, tmp_path):
    """A scored run whose evaluations hold no test value (one that diverged before its first
    evaluation) keeps its optimizer out of the verdicts, and the answer says so."""
    src, raw = toy_tier
    root = tmp_path / "tier"
    shutil.copytree(src, root)
    metrics = root / "toy/sgd/reruns/s2/metrics.jsonl"
    events = record.read_jsonl(metrics)
    for e in events:
        if e.get("event") == "eval":
            e.pop("test/acc", None)
    record.rewrite_jsonl(metrics, events)
    table = tier.answers.answer(tier_records.load(root, raw))
    assert table["Not compared"].tolist() == ["sgd (1 without a test/acc of 3 runs)"]
    assert (
        not table[list(tier.answers.ANSWER_COLUMNS.values())]
        .apply(lambda col: col.str.contains("sgd"))
        .any()
        .any()
    )


def test_a_diverged_run_is_not_scored_on_its_evaluations_before_the_divergence(toy_tier, tmp_path):
    """A scored run that diverged after an evaluation still holds that evaluation's test value;
    it is not its result (there is no final model), so its optimizer is not compared, and the
    answer says the run diverged."""
    src, raw = toy_tier
    root = tmp_path / "tier"
    shutil.copytree(src, root)
    summary = root / "toy/sgd/reruns/s2/summary.json"
    data = json.loads(summary.read_text())
    data.update(status="diverged", diverged_at_step=data["steps"], final={}, best={})
    summary.write_text(json.dumps(data))
    assert any("test/acc" in e for e in record.read_jsonl(summary.with_name("metrics.jsonl")))
    loaded = tier_records.load(root, raw)
    assert tier.answers.answer(loaded)["Not compared"].tolist() == ["sgd (1 diverged of 3 runs)"]
    across = tier.answers.by_optimizer(loaded).set_index("Optimizer")
    assert across.loc["sgd", "toy: toy"] == "not compared (1 diverged of 3 runs)"
    assert across.loc["sgd"].iloc[-1] == "0 / 0 / 0 of 1"
    gen = tier.answers.generalization(loaded, "toy").set_index("Optimizer")
    assert gen.iloc[:, -1]["sgd"] == "not compared: 1 diverged of 3 runs"
