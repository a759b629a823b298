"""suite.report: tables checked against numbers computed here from the raw seeds.

Records are real run folders written with suite.record's own writers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from suite.record import SUMMARY_KEYS, append_jsonl, atomic_write_text, create_run_dir, write_json
from suite.report.__main__ import main
from suite.report.compute.aggregate import aggregate
from suite.report.compute.stats import verdict
from suite.report.present.render import to_latex, to_markdown
from suite.report.present.tables import build_tables
from suite.report.read.collect import collect, stale_targets

ROOT = Path(__file__).resolve().parents[1]
CNN = {"metric": "val/acc", "value": 0.85, "direction": "max"}
LM = {"metric": "val/loss", "value": 2.0, "direction": "min"}
TEST_OFFSET = -0.01  # each run's test/<m> = its val/<m> + TEST_OFFSET: the splits differ
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(
    root: Path,
    name: str,
    *,
    task: str,
    optimizer: str,
    seed: int,
    hparams: dict,
    target: dict,
    status: str = "ok",
    best: float = math.nan,
    final: float = math.nan,
    train_m: float = math.nan,
    loss: float = 1.0,
    to_target: tuple | None = None,
    state_bytes: int = 800,
    n_params: int = 100,
    peak: int = 2**20,
    step_time: float = 0.01,
    steps: int = 100,
    max_steps: int = 100,
    **extra,
) -> Path:
    """One run folder as the training loop writes it."""
    d = create_run_dir(root / name)
    atomic_write_text(d / "config.yaml", f"task: {task}\noptimizer: {optimizer}\nseed: {seed}\n")
    write_json(d / "env.json", {"python": sys.version.split()[0]})
    m = target["metric"].split("/", 1)[1]
    for step in range(0, steps, 10):
        ev = {
            "event": "train",
            "step": step,
            "loss": loss + (steps - step) / steps,
            "lr": 1e-3,
            "grad_norm": 1.0,
            "step_time_s": step_time,
        }
        append_jsonl(d / "metrics.jsonl", ev)
    append_jsonl(
        d / "metrics.jsonl",
        {
            "event": "eval",
            "step": steps,
            "elapsed_s": 1.0,
            f"train/{m}": train_m,
            f"val/{m}": final,
            f"test/{m}": final + TEST_OFFSET,
        },
    )
    summary = dict.fromkeys(SUMMARY_KEYS)
    summary.update(
        schema=1,
        status=status,
        task=task,
        optimizer=optimizer,
        impl="inhouse",
        family="adamw",
        state_bits=8 if "8bit" in optimizer else 32,
        hparams=hparams,
        seed=seed,
        steps=steps,
        max_steps=max_steps,
        final={f"train/{m}": train_m, f"val/{m}": final, f"test/{m}": final + TEST_OFFSET},
        best={f"train/{m}": train_m, f"val/{m}": best, f"test/{m}": best + TEST_OFFSET},
        final_train_loss=loss,
        target=target,
        steps_to_target=to_target[0] if to_target else None,
        seconds_to_target=to_target[1] if to_target else None,
        n_params=n_params,
        optimizer_state_bytes=state_bytes,
        peak_memory_bytes=peak,
        peak_memory_kind="cpu_peak_rss",
        median_step_time_s=step_time,
        wall_seconds=5.0,
    )
    summary.update(extra)
    write_json(d / "summary.json", summary)
    return d


# Raw per-seed values: (best acc, final acc, train acc, final train loss, steps/seconds to target).
ADAMW_GRID = {  # (lr, wd) -> per-seed best acc
    (1e-3, 0.0): [0.86, 0.87, 0.865],
    (1e-3, 0.01): [0.88, 0.885, 0.875],
    (3e-3, 0.0): [0.84, 0.83, 0.845],
    (3e-3, 0.01): [0.87, 0.86, 0.872],
}
A8 = {
    "best": [0.80, 0.81, 0.79],
    "final": [0.79, 0.80, 0.785],
    "train": [0.95, 0.96, 0.94],
    "loss": [0.31, 0.29, 0.33],
    "to": [None, (60, 6.1), None],
}
LM_RAW = {"torch_adamw": [1.90, 1.95, 1.92], "adam8bit": [1.97, 2.05, 1.99]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for (lr, wd), accs in ADAMW_GRID.items():
        for seed, acc in enumerate(accs):
            reach = (40 + 10 * seed, 4.0 + seed) if acc >= 0.85 else None
            make_run(
                root,
                f"cnn/adamw_lr{lr}_wd{wd}_s{seed}",
                task="cnn",
                optimizer="adamw",
                seed=seed,
                hparams={"lr": lr, "weight_decay": wd, "betas": [0.9, 0.999]},
                target=CNN,
                best=acc,
                final=acc - 0.01,
                train_m=acc + 0.05,
                loss=0.2 + seed / 100,
                to_target=reach,
                state_bytes=800,
                peak=100 * 2**20,
                step_time=0.010 + seed * 1e-3,
            )
    for seed in range(3):
        make_run(
            root,
            f"cnn/a8_s{seed}",
            task="cnn",
            optimizer="adamw8bit",
            seed=seed,
            hparams={"lr": 1e-3, "weight_decay": 0.01, "betas": [0.9, 0.999]},
            target=CNN,
            best=A8["best"][seed],
            final=A8["final"][seed],
            train_m=A8["train"][seed],
            loss=A8["loss"][seed],
            to_target=A8["to"][seed],
            state_bytes=200,
            peak=80 * 2**20,
            step_time=0.02,
        )
    make_run(
        root,
        "cnn/sgd_s0",
        task="cnn",
        optimizer="sgd",
        seed=0,
        target=CNN,
        hparams={"lr": 0.1, "momentum": 0.9},
        best=0.82,
        final=0.81,
        train_m=0.9,
        loss=0.4,
        state_bytes=400,
    )
    # not in the tables: diverged, failed, missing/incomplete, malformed summary and metrics
    make_run(
        root,
        "cnn/a8_s3",
        task="cnn",
        optimizer="adamw8bit",
        seed=3,
        target=CNN,
        hparams={"lr": 1e-3, "weight_decay": 0.01, "betas": [0.9, 0.999]},
        status="diverged",
        diverged_at_step=37,
        diagnosis="loss became nan at step 37: lower the lr",
    )
    make_run(
        root,
        "cnn/sgd_s1",
        task="cnn",
        optimizer="sgd",
        seed=1,
        target=CNN,
        status="failed",
        hparams={"lr": 0.1, "momentum": 0.9},
        steps=12,
        error="RuntimeError: out of memory",
    )
    miss = create_run_dir(root / "cnn/missing_s9")
    atomic_write_text(miss / "config.yaml", "task: cnn\n")
    append_jsonl(miss / "metrics.jsonl", {"event": "train", "step": 30, "loss": 1.0})
    bad = make_run(
        root, "cnn/badsummary", task="cnn", optimizer="adamw", seed=7, hparams={}, target=CNN
    )
    atomic_write_text(bad / "summary.json", '{"status": "ok", "task": ')
    badm = make_run(
        root,
        "cnn/badmetrics",
        task="cnn",
        optimizer="adamw",
        seed=8,
        hparams={"lr": 9.0},
        target=CNN,
        best=0.99,
    )
    atomic_write_text(
        badm / "metrics.jsonl", '{"event": "train", "step": 1, "loss": 1}\nnot json\n{}\n'
    )
    for opt, losses in LM_RAW.items():
        for seed, x in enumerate(losses):
            make_run(
                root,
                f"lm/{opt}_s{seed}",
                task="lm",
                optimizer=opt,
                seed=seed,
                target=LM,
                hparams={"lr": 3e-4, "weight_decay": 0.1},
                best=x,
                final=x + 0.01,
                train_m=x - 0.1,
                loss=x - 0.1,
                to_target=(80, 8.0) if x <= 2.0 else None,
                state_bytes=800 if opt == "torch_adamw" else 200,
                peak=2**30,
            )
    return root


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "report"
    assert main([str(runs), "--out", str(out), "--title", "Test report"]) == 0
    return out


def _row(df: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(df), dtype=bool)
    for k, v in where.items():
        mask &= (df[k] == v).to_numpy()
    assert mask.sum() == 1, where
    return df[mask].iloc[0]


def test_convergence_numbers(report):
    conv = pd.read_csv(report / "convergence.csv")
    assert len(conv) == 4 + 1 + 1 + 2  # adamw grid, adamw8bit, sgd, lm x 2
    for (lr, wd), accs in ADAMW_GRID.items():
        r = _row(conv, task="cnn", optimizer="adamw", lr=lr, weight_decay=wd)
        assert r["n"] == 3
        assert r["best_target_mean"] == pytest.approx(np.mean(accs))
        assert r["best_target_std"] == pytest.approx(np.std(accs, ddof=1))
        assert r["final_train_loss_mean"] == pytest.approx(np.mean([0.2, 0.21, 0.22]))
        hit = [s for s, a in enumerate(accs) if a >= 0.85]
        assert r["reached"] == len(hit)
        if hit:
            assert r["steps_to_target_mean"] == pytest.approx(np.mean([40 + 10 * s for s in hit]))
            assert r["seconds_to_target_mean"] == pytest.approx(np.mean([4.0 + s for s in hit]))
        else:
            assert math.isnan(r["steps_to_target_mean"])
    a8 = _row(conv, optimizer="adamw8bit")
    assert (a8["n"], a8["reached"], a8["excluded"]) == (
        3,
        1,
        1,
    )  # the diverged seed is counted apart
    assert a8["steps_to_target_mean"] == 60 and math.isnan(a8["steps_to_target_std"])
    assert a8["final_train_loss_std"] == pytest.approx(np.std(A8["loss"], ddof=1))
    sgd = _row(conv, optimizer="sgd")
    assert sgd["n"] == 1 and math.isnan(sgd["best_target_std"]) and sgd["excluded"] == 1
    md = (report / "report.md").read_text()
    assert "1/3 reached" in md and "0/3 reached" in md and "not reached" in md
    assert "betas=[0.9, 0.999]" in md  # a constant hyperparameter is named once, below the table


def test_generalization_gap(report):
    gen = pd.read_csv(report / "generalization.csv")
    a8 = _row(gen, optimizer="adamw8bit")
    gap = np.subtract(A8["train"], np.add(A8["final"], TEST_OFFSET))  # train - test
    assert a8["gap_mean"] == pytest.approx(gap.mean()) and a8["gap_std"] == pytest.approx(
        gap.std(ddof=1)
    )
    assert a8["final_target_mean"] == pytest.approx(np.mean(A8["final"]))  # val
    assert a8["final_test_mean"] == pytest.approx(np.mean(A8["final"]) + TEST_OFFSET)
    lm = _row(gen, optimizer="adam8bit")
    assert (
        lm["gap_mean"] == pytest.approx(-0.11 - TEST_OFFSET) and lm["target_metric"] == "val/loss"
    )


def test_memory_relative_to_adamw(report):
    mem = pd.read_csv(report / "memory.csv")
    a8 = _row(mem, optimizer="adamw8bit")
    assert a8["state_bytes_per_param_mean"] == 2.0 and a8["state_bytes_per_param_rel"] == 0.25
    assert a8["peak_memory_bytes_rel"] == pytest.approx(0.8)
    assert a8["median_step_time_s_rel"] == pytest.approx(0.02 / np.mean([0.010, 0.011, 0.012]))
    assert _row(mem, optimizer="adam8bit")["state_bytes_per_param_rel"] == 0.25  # vs torch_adamw
    md = (report / "report.md").read_text()
    assert "cnn: adamw (in-house)" in md and "lm: torch_adamw (torch.optim)" in md


def _sign_flip_p(d) -> float:
    d = np.asarray(d, dtype=float)
    res = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=2 ** len(d))
    return float(res.pvalue)


def test_comparisons_paired_with_holm(report):
    cmp = pd.read_csv(report / "comparisons.csv")
    # cnn baseline: the adamw setting with the best mean accuracy (lr 1e-3, wd 0.01)
    best = ADAMW_GRID[(1e-3, 0.01)]
    a8 = _row(cmp, optimizer="adamw8bit")
    d = np.subtract(A8["best"], best)  # paired by seed 0, 1, 2
    assert a8["n_paired"] == 3 and a8["diff"] == pytest.approx(d.mean())
    assert a8["p"] == pytest.approx(_sign_flip_p(d))
    assert a8["ci_low"] <= d.mean() <= a8["ci_high"]
    assert a8["baseline"] == "adamw" and "lr=0.001" in a8["baseline_hparams"]
    assert a8["margin"] == 0.005
    # the family: 3 other adamw settings + adamw8bit on cnn (sgd has 1 seed: no p)
    fam = cmp[(cmp["task"] == "cnn") & cmp["p"].notna()]
    assert len(fam) == 4
    raw = fam["p"].to_numpy()
    order = np.argsort(raw, kind="stable")
    want, running = np.empty(4), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (4 - rank) * raw[i]))
        want[i] = running
    assert fam["p_holm"].to_numpy() == pytest.approx(want)
    # 3 seeds: the smallest sign-flip p is 0.25, so nothing is called better or worse
    assert not cmp["result"].isin(["better", "worse"]).any()
    sgd = _row(cmp, optimizer="sgd")
    assert sgd["result"].endswith("no test") and math.isnan(sgd["p"])
    lm = _row(cmp, optimizer="adam8bit")
    assert lm["baseline"] == "torch_adamw" and lm["margin"] == 0.01
    d_lm = np.subtract(LM_RAW["adam8bit"], LM_RAW["torch_adamw"])
    assert lm["diff"] == pytest.approx(d_lm.mean())
    assert lm["p"] == pytest.approx(_sign_flip_p(d_lm)) and lm["p_holm"] == pytest.approx(lm["p"])
    assert len(cmp) == 3 + 1 + 1 + 1  # 3 other adamw settings, adamw8bit, sgd, lm adam8bit
    assert "no test" in (report / "report.md").read_text()


def test_runs_not_in_tables(report):
    probs = pd.read_csv(report / "not_in_tables.csv", dtype=str).set_index("folder")
    by_name = {Path(f).name: r for f, r in probs.iterrows()}
    assert set(by_name) == {"a8_s3", "sgd_s1", "missing_s9", "badsummary", "badmetrics"}
    assert by_name["a8_s3"]["status"] == "diverged" and by_name["a8_s3"]["step"] == "37"
    assert "lower the lr" in by_name["a8_s3"]["reason"]
    assert (
        by_name["sgd_s1"]["status"] == "failed" and "out of memory" in by_name["sgd_s1"]["reason"]
    )
    assert (
        by_name["missing_s9"]["status"] == "missing/incomplete"
        and by_name["missing_s9"]["step"] == "30"
    )
    assert (
        by_name["badsummary"]["status"] == "malformed"
        and "not valid JSON" in by_name["badsummary"]["reason"]
    )
    assert (
        by_name["badmetrics"]["status"] == "malformed"
        and ":2: not a JSON line" in by_name["badmetrics"]["reason"]
    )
    md = (report / "report.md").read_text()
    section = md.split("## Runs not in the tables")[1]
    for name in by_name:
        assert name in section
    # the malformed runs' numbers never reach a table
    assert "9" not in set(pd.read_csv(report / "convergence.csv")["lr"].astype(str))


def test_latex_and_csv_round_trip(report):
    n_rows = {
        "convergence": 8,
        "generalization": 8,
        "memory": 8,
        "comparisons": 6,
        "not_in_tables": 5,
    }
    for name, n in n_rows.items():
        tex = (report / f"{name}.tex").read_text()
        assert "\\begin{tabular}" in tex and "\\end{tabular}" in tex
        body = tex.split("\\midrule")[1].split("\\bottomrule")[0]
        assert sum(line.rstrip().endswith("\\\\") for line in body.splitlines()) == n, name
        assert "±" not in tex
        assert len(pd.read_csv(report / f"{name}.csv")) == n


def test_plots_are_pngs(report):
    pngs = sorted((report / "plots").glob("*.png"))
    names = {p.name for p in pngs}
    assert "loss_curves.png" in names and "heatmap_cnn_adamw.png" in names
    assert not any(
        "adamw8bit" in n or "lm" in n for n in names if n.startswith("heatmap")
    )  # no grid there
    for p in pngs:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 1000
        assert f"]({p.relative_to(report).as_posix()})" in (report / "report.md").read_text()


def test_markdown_printed(runs, tmp_path, capsys):
    assert main([str(runs), "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    assert printed == (tmp_path / "o" / "report.md").read_text()
    for title in (
        "## Convergence",
        "## Generalization",
        "## Memory",
        "## Comparisons",
        "## Runs not in",
    ):
        assert title in printed


def test_force(runs, tmp_path, capsys):
    out = tmp_path / "o"
    assert main([str(runs / "lm"), "--out", str(out)]) == 0
    (out / "report.md").write_text("keep me")
    capsys.readouterr()
    assert main([str(runs), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert (out / "report.md").read_text() == "keep me"
    stale = out / "plots" / "heatmap_gone_adamw.png"  # from an earlier report: must not linger
    stale.write_bytes(PNG_MAGIC)
    assert main([str(runs), "--out", str(out), "--force"]) == 0
    assert not stale.exists()
    assert "adamw8bit" in (out / "report.md").read_text()


@pytest.mark.parametrize("kind", ["absent", "file", "empty"])
def test_bad_runs_path(tmp_path, capsys, kind):
    path = tmp_path / "runs"
    if kind == "file":
        path.write_text("x")
    elif kind == "empty":
        (path / "sub").mkdir(parents=True)
    assert main([str(path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(path) in err
    assert not (tmp_path / "o").exists()


def test_cli_subprocess(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "suite.report",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        r.returncode == 1 and r.stderr.strip().startswith("error:") and "not a folder" in r.stderr
    )


def test_edge_records(tmp_path):
    """nan strings, int vs float hparams, a copied folder, a running run, a disagreeing target."""
    kw = dict(task="t", optimizer="adamw", target=CNN, final=0.9, train_m=1.0)
    # loss=nan is written as the string "nan" (record.py keeps JSON standard)
    make_run(tmp_path, "a", seed=0, hparams={"lr": 1}, best=0.9, loss=math.nan, **kw)
    make_run(tmp_path, "b", seed=1, hparams={"lr": 1.0}, best=0.7, to_target=(10, 1.0), **kw)
    make_run(tmp_path, "c", seed=2, hparams={"lr": 1.0}, status="running", **kw)
    make_run(tmp_path, "d", seed=3, hparams={"lr": 1.0}, **(kw | {"target": LM}))
    (tmp_path / "copy").mkdir()
    for f in (tmp_path / "b").iterdir():
        (tmp_path / "copy" / f.name).write_bytes(f.read_bytes())
    records = collect([tmp_path, tmp_path / "a"])  # folder "a" named twice: counted once
    agg = aggregate(records)
    assert len(agg) == 1 and agg["n"][0] == 2  # lr=1 and lr=1.0 are one setting
    assert agg["best_target_mean"][0] == pytest.approx(0.8) and agg["reached"][0] == 1
    assert math.isnan(agg["final_train_loss_mean"][0])  # a "nan" seed shows, never skipped
    status = {
        Path(f).name: s
        for f, s in zip(records.problems["folder"], records.problems["status"], strict=True)
    }
    assert status == {"c": "running", "d": "inconsistent", "copy": "duplicate"}
    assert agg["excluded"][0] == 3


def test_verdict(runs):
    df = collect([runs]).runs
    text = verdict(
        df, baseline={"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01}, candidate="adamw8bit"
    )
    # paired by seed: every seed lost 0.075-0.085, so the exact sign-flip p is 2 of 2^3 = 0.25
    diffs = np.array(A8["best"]) - np.array(ADAMW_GRID[(1e-3, 0.01)])
    p = stats.permutation_test((diffs,), np.mean, permutation_type="samples").pvalue
    assert p == pytest.approx(0.25)
    assert f"p = {p:.3g}" in text and "(n=3)" in text and f"{np.mean(A8['best']):.4g}" in text
    assert f"difference {diffs.mean():+.3g}" in text and "paired by seed" in text
    assert "not significant at 0.05" in text
    one = verdict(
        df, baseline={"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01}, candidate="sgd"
    )
    assert "n<2, no test" in one and "p =" not in one
    with pytest.raises(ValueError, match="spans tasks"):
        verdict(df, baseline="adamw", candidate="adam8bit")
    lm = verdict(df, baseline="torch_adamw", candidate="adam8bit", metric="final_train_loss")
    assert "On lm" in lm and "final_train_loss" in lm


# --- fuzz: malformed records never crash the report ----------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["nan", "inf", "-inf", "ok"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
summary_edits = st.dictionaries(st.sampled_from(SUMMARY_KEYS), json_values, max_size=3)
metric_lines = st.lists(
    st.one_of(
        st.text(max_size=30),
        json_values.map(json.dumps),
        st.fixed_dictionaries(
            {"event": st.sampled_from(["train", "eval"]), "step": json_values, "loss": json_values}
        ).map(json.dumps),
    ),
    max_size=4,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=summary_edits,
    raw=st.none() | st.text(max_size=40),
    lines=metric_lines,
    drop=st.booleans(),
)
def test_fuzz_malformed_records(tmp_path_factory, edits, raw, lines, drop):
    root = tmp_path_factory.mktemp("fuzz")
    make_run(
        root,
        "good_s0",
        task="t",
        optimizer="adamw",
        seed=0,
        hparams={"lr": 1e-3},
        target=CNN,
        best=0.9,
        final=0.9,
        train_m=0.95,
    )
    bad = make_run(
        root,
        "z_bad",
        task="t",
        optimizer="adamw8bit",
        seed=1,
        hparams={"lr": 1e-3},
        target=CNN,
        best=0.5,
        final=0.5,
        train_m=0.6,
    )
    summary = json.loads((bad / "summary.json").read_text())
    summary.update(edits)
    for key in list(edits)[:1] if drop else []:
        summary.pop(key)
    atomic_write_text(bad / "summary.json", raw if raw is not None else json.dumps(summary))
    if lines:
        atomic_write_text(bad / "metrics.jsonl", "\n".join(lines) + "\n")

    records = collect([root])
    in_tables = set(records.runs["folder"]) if not records.runs.empty else set()
    listed = set(records.problems["folder"])
    assert in_tables | listed == {str(root / "good_s0"), str(bad)} and not in_tables & listed
    assert str(root / "good_s0") in in_tables
    for reason in records.problems["reason"]:
        assert reason and "\n" not in reason
    agg = aggregate(records)
    for table in build_tables(agg, records):
        to_markdown(table.shown)
        to_latex(table)
    good = agg[
        agg["group"]
        == records.runs["group"][records.runs["folder"] == str(root / "good_s0")].iloc[0]
    ].iloc[0]
    assert good["best_target_mean"] == 0.9 and good["n"] == 1  # the bad run never leaks into it


def test_corrupted_test_metrics_change_no_selection_and_no_ranking(runs, report, tmp_path):
    """Tables choose on the target (val) only: wreck every test/* value and only the
    columns that report test metrics move."""
    import shutil

    from suite.record import read_jsonl, rewrite_jsonl

    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    wrecked = 0
    for summary_path in copy.rglob("summary.json"):
        try:
            s = json.loads(summary_path.read_text())
            events = read_jsonl(summary_path.parent / "metrics.jsonl")
        except (ValueError, OSError):  # the fixture's deliberately broken records stay broken
            continue
        if not isinstance(s, dict):
            continue
        for part in ("final", "best"):
            for k in list(s.get(part) or {}):
                if k.startswith("test/"):
                    s[part][k], wrecked = 123.0, wrecked + 1
        write_json(summary_path, s)
        rewrite_jsonl(
            summary_path.parent / "metrics.jsonl",
            [{k: (-5.0 if k.startswith("test/") else v) for k, v in ev.items()} for ev in events],
        )
    assert wrecked > 20
    out = tmp_path / "report"
    assert main([str(copy), "--out", str(out)]) == 0
    for name in ("convergence", "memory", "comparisons"):
        a = pd.read_csv(report / f"{name}.csv").drop(columns=["seeds"], errors="ignore")
        b = pd.read_csv(out / f"{name}.csv").drop(columns=["seeds"], errors="ignore")
        pd.testing.assert_frame_equal(a, b, check_exact=False)
    gen_a, gen_b = (
        pd.read_csv(report / "generalization.csv"),
        pd.read_csv(out / "generalization.csv"),
    )
    moved = [c for c in gen_a.columns if not gen_a[c].equals(gen_b[c])]
    assert moved and all(c.startswith(("final_test", "gap")) for c in moved)
    assert (gen_b["final_test_mean"].dropna() == 123.0).all()
    heat = sorted(p.name for p in (report / "plots").glob("heatmap_*.png"))
    assert heat == sorted(p.name for p in (out / "plots").glob("heatmap_*.png"))


def test_a_stale_baseline_target_is_flagged_and_no_run_is_dropped(tmp_path):
    """Committed baselines made before the lm target moved (2.0 -> 1.79) and a candidate's
    reruns at the committed 1.79: every run stays in the tables; the stale one is named."""
    stale, now = LM, LM | {"value": 1.79}
    for seed, best in enumerate([1.90, 1.95, 1.92]):
        make_run(
            tmp_path,
            f"base/s{seed}",
            task="lm",
            optimizer="adamw",
            seed=seed,
            target=stale,
            hparams={"lr": 1e-3},
            best=best,
            final=best,
            train_m=best,
            loss=best,
        )
    for seed, best in enumerate([1.85, 1.88]):
        make_run(
            tmp_path,
            f"mine/s{seed}",
            task="lm",
            optimizer="lion",
            seed=seed,
            target=now,
            hparams={"lr": 1e-4},
            best=best,
            final=best,
            train_m=best,
            loss=best,
        )
    records = collect([tmp_path])
    assert len(records.runs) == 5 and records.problems.empty
    assert sorted(set(records.runs["optimizer"])) == ["adamw", "lion"]
    (note,) = [n for n in records.notes if n.startswith("stale targets on lm")]
    assert "val/loss <= 2.0 (adamw)" in note and "val/loss <= 1.79 (lion)" in note
    (flag,) = stale_targets(records.runs.to_dict("records"), {"lm": 1.79})
    assert "val/loss <= 2.0 (adamw)" in flag and "lion" not in flag and "committed 1.79" in flag
    assert stale_targets(records.runs.to_dict("records"), {"lm": 2.0}) == [
        "stale baseline targets on lm: val/loss <= 1.79 (lion), not the committed 2.0; "
        "these runs are kept and scored against the committed target"
    ]


def test_trials_and_configurations_are_chosen_by_one_rule():
    """objective.rank_key is selection.trial_key of the trial's summary: the objective value
    first, then the best val metric oriented so that smaller is better; NaN sorts last."""
    from suite.report.compute.selection import trial_key
    from suite.tune.objective import rank_key

    def summary(best, direction, steps=None):
        metric = "val/acc" if direction == "max" else "val/loss"
        return {
            "status": "ok",
            "steps_to_target": steps,
            "max_steps": 100,
            "best": {metric: best},
            "target": {
                "metric": metric,
                "value": 0.5 if direction == "max" else 2.0,
                "direction": direction,
            },
        }

    assert rank_key(summary(0.9, "max", 40)) == trial_key(0.4, 0.9, "max") == (0.4, -0.9)
    assert rank_key(summary(1.5, "min", 40)) == (0.4, 1.5)
    tied = [summary(0.8, "max", 40), summary(0.9, "max", 40), summary(math.nan, "max", 40)]
    assert [s["best"]["val/acc"] for s in sorted(tied, key=rank_key)][:2] == [0.9, 0.8]
    assert sorted(tied, key=rank_key)[-1] is tied[2]
