"""Peak memory is per run even when a sweep runs many runs in one process."""

from __future__ import annotations

import sys

import pytest
import torch

from suite.runner.peak_memory import peak_memory, reset_peak_memory

CPU = torch.device("cpu")


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="resettable RSS peak is Linux-only"
)
def test_cpu_peak_is_above_the_baseline_and_resets_between_runs():
    reset_peak_memory(CPU)
    assert peak_memory(CPU)["peak_memory_bytes"] < 20e6  # libraries are in the baseline
    big = torch.ones(50_000_000)  # 200 MB, touched
    del big
    after_big = peak_memory(CPU)["peak_memory_bytes"]
    assert 190e6 < after_big < 260e6
    reset_peak_memory(CPU)
    assert peak_memory(CPU)["peak_memory_bytes"] < 20e6
    assert peak_memory(CPU)["peak_memory_kind"] == "cpu_rss_above_baseline"
