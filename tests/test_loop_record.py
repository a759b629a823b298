"""What the loop keeps: the best of each metric over evaluations, in its own direction."""

from __future__ import annotations

from suite.runner.loop_record import best


def test_best_takes_the_max_of_accuracies_and_the_min_of_losses():
    evals = [
        {"event": "eval", "step": 10, "elapsed_s": 1.0, "val/acc": 0.6, "val/loss": 0.9},
        {"event": "eval", "step": 20, "elapsed_s": 2.0, "val/acc": 0.8, "val/loss": 1.2},
        {"event": "eval", "step": 30, "elapsed_s": 3.0, "val/acc": 0.7, "val/ppl": 5.0},
    ]
    assert best(evals) == {"val/acc": 0.8, "val/loss": 0.9, "val/ppl": 5.0}
    assert best([]) == {}
