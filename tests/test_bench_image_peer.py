"""suite.bench.image_peer: the suite's loop and the bare one compute the same losses."""

from __future__ import annotations

import pytest
import torch

from suite.bench.image_peer import build_task, compare, main, paired_ratio
from suite.data import DatasetError


def _task(workload: str, **sizes):
    try:
        return build_task(workload, **sizes)
    except DatasetError as e:  # Fashion-MNIST is not in the repository
        pytest.skip(f"no Fashion-MNIST: {e}")


@pytest.mark.parametrize(
    ("workload", "sizes"),
    [
        pytest.param("cnn_fashion", {"width": 8, "batch_size": 8}, marks=pytest.mark.slow),
        ("vit_fashion", {"batch_size": 8}),  # ~5 s: keeps one case in the default set
        pytest.param("fmnist_2c2d", {"batch_size": 8}, marks=pytest.mark.slow),
    ],
)
def test_both_loops_train_the_same_model_on_the_same_batches(workload, sizes):
    torch.set_num_threads(1)
    out = compare(_task(workload, **sizes), rounds=2, steps=2, warmup=1)
    suite, bare = out["suite"], out["bare"]
    assert len(suite["losses"]) == len(bare["losses"]) == 5
    # step 0: same init, same batch; later steps: same updates (and, for the ViT, the same
    # stochastic-depth draws), so the loss is bit-identical throughout
    assert suite["losses"][0] == bare["losses"][0]
    assert suite["losses"] == bare["losses"]
    assert len(suite["times"]) == len(bare["times"]) == 4  # warm-up excluded
    assert len(suite["rounds"]) == len(bare["rounds"]) == 2
    assert all(t > 0 for t in suite["times"] + bare["times"])


def test_paired_ratio_brackets_a_known_ratio():
    bare = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0]
    ratio, low, high = paired_ratio([2 * b for b in bare], bare)
    assert ratio == low == high == pytest.approx(2.0)
    ratio, low, high = paired_ratio([1.0, 1.2, 1.1, 1.3, 0.9, 1.05], [1.0] * 6)
    assert low < ratio < high and ratio == pytest.approx(1.075)


def test_bad_rounds_is_one_line():
    with pytest.raises(SystemExit, match="--rounds must be >= 1, got 0"):
        main(["--rounds", "0"])
