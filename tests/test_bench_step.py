"""The step benchmark (suite/bench/step.py): the bandwidth row and % of it, the contended
mode's second busy process and slowdown column, at a tiny size."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from suite.bench import step
from suite.bench.contend import BusyCore


@pytest.mark.slow
def test_contended_table_has_bandwidth_and_slowdown(tmp_path, capsys):
    out = tmp_path / "step.csv"
    only = ["adamw_fused", "sgd_fused"]
    step.main(["--sizes", "2e4", "--repeats", "3", "--warmup", "1", "--threads", "1"]
              + ["--only", *only, "--contended", "--out", str(out)])  # fmt: skip
    table = pd.read_csv(out)
    assert list(table["name"]) == [step.BANDWIDTH, step.BASELINE, *only]
    assert {"% bw", "ms contended", "slowdown"} <= set(table.columns)
    bw = table.set_index("name").loc[step.BANDWIDTH]
    assert bw["% bw"] == pytest.approx(100)
    assert (table["slowdown"] > 0).all() and (table["% bw"] > 0).all()
    row = table.set_index("name").loc["adamw_fused"]
    assert row["% bw"] == pytest.approx(100 * row["GB/s"] / bw["GB/s"])
    assert "contended: a busy loop on core" in capsys.readouterr().out


def test_quiet_table_has_no_contended_columns(tmp_path):
    out = tmp_path / "step.md"
    step.main(["--sizes", "2e4", "--repeats", "2", "--warmup", "1", "--threads", "1"]
              + ["--only", "adamw_fused", "--out", str(out)])  # fmt: skip
    text = out.read_text()
    assert "| bandwidth | a.add_(b) |" in text and "% bw" in text and "slowdown" not in text


def test_busy_core_runs_only_inside_running_and_is_killed():
    with BusyCore() as busy:
        pid = busy.proc.pid
        state = lambda: open(f"/proc/{pid}/stat").read().split(")")[1].split()[0]  # noqa: E731
        assert state() == "T"  # stopped between contended halves
        with busy.running():
            assert state() in "RS"
        assert state() == "T"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_unknown_entry_is_refused_with_the_valid_names(capsys):
    with pytest.raises(SystemExit) as exit_:
        step.main(["--only", "adamw_fast"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown entries ['adamw_fast']" in err and "deepspeed_cpuadam" in err
