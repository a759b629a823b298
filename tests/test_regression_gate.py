"""suite/report/documents/gate.py on real reports: run records written with suite.record's
writers (tests.test_report.make_run), reports written by the real suite.report."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from suite.report.__main__ import main as report_main
from suite.report.documents import gate
from tests.test_report import CNN, LM, make_run

ROOT = Path(__file__).resolve().parents[1]

# Per row: (task, optimizer, target, per-seed best metric, median step time in s).
# adamw's band: pooled std 0.01 -> max(2 * 0.01, floor 0.01) = 0.02.
BASE = {
    ("cnn_digits", "adamw"): (CNN, [0.90, 0.91, 0.92], 0.010),
    ("cnn_digits", "adamw8bit"): (CNN, [0.89, 0.90, 0.91], 0.012),
    ("cnn_digits", "sgd"): (CNN, [0.80, 0.81, 0.82], 0.008),
    ("lm_shakespeare", "torch_adamw"): (LM, [1.90, 1.91, 1.92], 0.020),
    ("lm_shakespeare", "adamw8bit"): (LM, [1.95, 1.96, 1.97], 0.022),
}


def write_runs(root: Path, rows: dict, diverged: tuple = ()) -> Path:
    for (task, opt), (target, values, step_time) in rows.items():
        for seed, value in enumerate(values):
            bad = (task, opt, seed) in diverged or (task, opt) in diverged
            status = "diverged" if bad else "ok"
            extra = dict(diagnosis="non-finite loss", diverged_at_step=7) if status != "ok" else {}
            make_run(
                root,
                f"{task}/{opt}_s{seed}",
                task=task,
                optimizer=opt,
                seed=seed,
                hparams={"lr": 1e-3, "weight_decay": 0.01},
                target=target,
                status=status,
                best=value,
                final=value,
                train_m=value,
                step_time=step_time,
                **extra,
            )
    return root


def make_report(tmp: Path, name: str, rows: dict, diverged: tuple = ()) -> Path:
    runs = write_runs(tmp / f"runs_{name}", rows, diverged)
    out = tmp / name
    assert report_main([str(runs), "--out", str(out)]) == 0
    return out


def shifted(values: list[float], by: float) -> list[float]:
    return [v + by for v in values]


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("gate")
    base = make_report(tmp, "base", BASE)
    same = tmp / "same"
    shutil.copytree(base, same)
    noisy = dict(BASE)
    noisy["cnn_digits", "adamw"] = (CNN, shifted(BASE["cnn_digits", "adamw"][1], -0.005), 0.010)
    noisy["cnn_digits", "adamw8bit"] = (CNN, BASE["cnn_digits", "adamw8bit"][1], 0.013)  # 1.08x
    lm = BASE["lm_shakespeare", "torch_adamw"]
    noisy["lm_shakespeare", "torch_adamw"] = (LM, shifted(lm[1], -0.3), 0.020)  # better
    noisy["lm_shakespeare", "adam"] = (LM, [2.5, 2.6], 0.02)  # a row the baseline lacks
    bad = dict(BASE)
    bad["cnn_digits", "adamw"] = (CNN, shifted(BASE["cnn_digits", "adamw"][1], -0.05), 0.010)
    bad["lm_shakespeare", "torch_adamw"] = (LM, lm[1], 0.030)  # 1.5x slower
    a8 = BASE["lm_shakespeare", "adamw8bit"]
    bad["lm_shakespeare", "adamw8bit"] = (LM, shifted(a8[1], +0.05), 0.022)  # loss up: worse
    del bad["cnn_digits", "adamw8bit"]
    return {
        "base": base,
        "same": same,
        "noisy": make_report(tmp, "noisy", noisy),
        "bad": make_report(tmp, "bad", bad, diverged=(("cnn_digits", "sgd"),)),
    }


def run_gate(capsys, base: Path, new: Path, *extra: str) -> tuple[int, str, str]:
    code = gate.main(["--base", str(base), "--new", str(new), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def verdicts(out: str) -> dict[tuple[str, str], str]:
    """(task, optimizer) -> verdict, from the printed Markdown table."""
    rows = [line.strip("|").split(" | ") for line in out.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in rows[0]]
    task, opt, verdict = head.index("Task"), head.index("Optimizer"), head.index("Verdict")
    return {(r[task].strip(), r[opt].strip()): r[verdict].strip() for r in rows[1:]}


def test_identical_reports_pass(reports, capsys):
    code, out, _ = run_gate(capsys, reports["base"], reports["same"])
    assert code == 0, out
    assert set(verdicts(out).values()) == {"ok"} and len(verdicts(out)) == len(BASE)
    assert "gate: PASS (0 of 5 baseline rows failed, 0 new rows)" in out


def test_noise_improvement_small_slowdown_and_new_rows_pass(reports, capsys):
    code, out, _ = run_gate(capsys, reports["base"], reports["noisy"])
    assert code == 0, out
    v = verdicts(out)
    assert v["cnn_digits", "adamw"] == "ok"  # 0.005 lower accuracy, band 0.02
    assert v["lm_shakespeare", "torch_adamw"] == "ok"  # loss 0.3 lower: better, not worse
    assert v["cnn_digits", "adamw8bit"] == "ok"  # 1.08x slower step
    assert v["lm_shakespeare", "adam"] == "ok (new row)"
    assert "FAIL" not in out


def test_regressions_fail_and_are_named(reports, capsys):
    code, out, _ = run_gate(capsys, reports["base"], reports["bad"])
    assert code == 1
    v = verdicts(out)
    assert v["cnn_digits", "adamw"].startswith("FAIL: best val/acc 0.86 vs 0.91")
    assert "band 0.02" in v["cnn_digits", "adamw"]
    assert v["lm_shakespeare", "adamw8bit"].startswith("FAIL: best val/loss 2.01 vs 1.96")
    assert "1.50x > 1.25x" in v["lm_shakespeare", "torch_adamw"]
    assert v["cnn_digits", "adamw8bit"] == "FAIL: missing from the new report"
    assert v["cnn_digits", "sgd"].startswith("FAIL: status ok -> diverged")
    fails = [line for line in out.splitlines() if line.startswith("FAIL ")]
    names = sorted(line.split(" [")[0] for line in fails)
    assert names == [
        "FAIL cnn_digits adamw",
        "FAIL cnn_digits adamw8bit",
        "FAIL cnn_digits sgd",
        "FAIL lm_shakespeare adamw8bit",
        "FAIL lm_shakespeare torch_adamw",
    ]
    assert all("[lr=0.001, weight_decay=0.01] steps=100:" in line for line in fails)
    assert out.rstrip().endswith("gate: FAIL (5 of 5 baseline rows failed, 0 new rows)")


def test_band_and_ratio_are_configurable(reports, capsys):
    # a band of 6 stds (0.06) absorbs the 0.05 drops; 1.6x allows the 1.5x step
    code, out, _ = run_gate(
        capsys, reports["base"], reports["bad"], "--k", "6", "--time-ratio", "1.6"
    )
    v = verdicts(out)
    assert v["cnn_digits", "adamw"] == v["lm_shakespeare", "adamw8bit"] == "ok"
    assert v["lm_shakespeare", "torch_adamw"] == "ok"
    assert code == 1  # the missing and diverged rows still fail
    # a floor wider than any change: only those two fail
    code, out, _ = run_gate(capsys, reports["base"], reports["bad"], "--floor", "1")
    assert verdicts(out)["cnn_digits", "adamw"] == "ok"


def test_one_seed_diverged_fails(tmp_path, capsys):
    rows = {("cnn_digits", "adamw"): BASE["cnn_digits", "adamw"]}
    base = make_report(tmp_path, "base", rows)
    new = make_report(tmp_path, "new", rows, diverged=(("cnn_digits", "adamw", 2),))
    code, out, _ = run_gate(capsys, base, new)
    assert code == 1
    assert "status ok -> diverged for some seeds: 2 in the table (baseline 3)" in out


def test_compare_pooled_band():
    assert gate.pooled_std(3, 0.01, 3, 0.03) == pytest.approx((0.0005) ** 0.5)
    assert gate.pooled_std(1, float("nan"), 3, 0.02) == pytest.approx(0.02)
    assert math.isnan(gate.pooled_std(1, float("nan"), 1, float("nan")))


@pytest.mark.parametrize("which", ["absent", "empty", "not_report"])
def test_bad_folders_exit_2_with_one_line(reports, tmp_path, capsys, which):
    bad = tmp_path / "bad"
    if which != "absent":
        bad.mkdir()
    if which == "not_report":
        (bad / "convergence.csv").write_text("a,b\n1,2\n")
        (bad / "memory.csv").write_text("a,b\n1,2\n")
    for base, new in ((bad, reports["base"]), (reports["base"], bad)):
        code, out, err = run_gate(capsys, base, new)
        assert code == 2 and out == ""
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err


def test_new_report_with_no_ok_run_fails_every_row(tmp_path, capsys):
    rows = {("cnn_digits", "sgd"): BASE["cnn_digits", "sgd"]}
    base = make_report(tmp_path, "base", rows)
    new = make_report(tmp_path, "new", rows, diverged=(("cnn_digits", "sgd"),))
    assert not (new / "convergence.csv").exists()
    code, out, _ = run_gate(capsys, base, new)
    assert code == 1 and "FAIL cnn_digits sgd" in out and "status ok -> diverged" in out


def test_make_gate_target(reports):
    def make_gate(new: Path) -> subprocess.CompletedProcess:
        cmd = [
            "make",
            "-s",
            "gate",
            f"PY={sys.executable}",
            f"NEW={new}",
            f"BASE={reports['base']}",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("ARGS", None)  # `make test ARGS=...` must not reach `make gate`'s own ARGS
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)

    ok = make_gate(reports["same"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = make_gate(reports["bad"])
    assert bad.returncode != 0 and "FAIL cnn_digits adamw [" in bad.stdout
