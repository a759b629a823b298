"""Bad input that got through or got a traceback (issue 22): each is one line now."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from suite.optim import entry
from suite.record import RecordError
from suite.runner import command_line, preflight, schema
from tests.conftest import run_suite


@pytest.mark.parametrize(
    "hparams, words",
    [
        ({"momentum": 1.5}, "[0, 1)"),  # before: accepted, recorded ok with loss 355
        ({"momentum": -0.1}, "[0, 1)"),
        ({"lr": 1e308}, "float32"),  # before: "cannot be converted to float" at step 1
        ({"lr": 10**400}, "float32"),
        ({"betas": [0.9, float("inf")]}, "betas[1]"),
    ],
)
def test_hparams_that_cannot_train_are_refused(hparams, words):
    with pytest.raises(ValueError, match="invalid optimizer") as e:
        entry.check_hparams(hparams)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_hparams_that_can_train_pass():
    entry.check_hparams({"lr": 0.1, "momentum": 0.0, "betas": [0.9, 0.999]})


def test_a_run_dir_name_longer_than_the_file_system_allows_is_refused(tmp_path):
    """Before: Hydra's mkdir failed with a traceback after making the parent folder."""
    path = tmp_path / "parent" / ("x" * 300)
    with pytest.raises(RecordError, match="300 bytes"):
        preflight.check_run_dir(path)
    assert not (tmp_path / "parent").exists()


def test_a_target_typo_and_a_missing_partial_are_one_line():
    typo = OmegaConf.create({"_target_": "suite.optim.sgd.SGDD", "_partial_": True, "lr": 0.1})
    with pytest.raises(ValueError, match="not an importable class") as e:
        schema.check_optimizer_keys(typo)
    assert "\n" not in str(e.value)
    partial = OmegaConf.create({"_target_": "suite.optim.sgd.SGD", "lr": 0.1})
    with pytest.raises(ValueError, match="_partial_: true"):
        schema.check_optimizer_keys(partial)


def test_a_yaml_syntax_error_in_a_group_option_is_one_line(tmp_path):
    """Before: Hydra's 89-line ScannerError."""
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "broken.yaml").write_text("_target_: x\nlr: [0.1\n")
    problem = command_line.check_choices(
        ["optimizer=broken", f"hydra.searchpath=[file://{tmp_path}]"]
    )
    assert problem and "broken.yaml:3" in problem and "not valid YAML" in problem


def test_a_cnn_with_batch_size_1_is_refused_up_front():
    """Before: accepted, then BatchNorm failed at the first step."""
    from suite.tasks.cnn import CNNTask

    with pytest.raises(ValueError, match=">= 2"):
        CNNTask(batch_size=1)


BOOM = """
import torch


class Boom(torch.optim.SGD):
    def step(self, closure=None):
        raise RuntimeError("boom from step")
"""


@pytest.mark.slow  # a real run through the entry point (about 10 s here)
def test_a_failing_step_saves_its_traceback_in_run_log(tmp_path):
    """Before: the error line went to summary.json and the traceback nowhere."""
    (tmp_path / "boom_opt.py").write_text(BOOM)
    run_dir = tmp_path / "run"
    proc = run_suite(
        "task=toy", "logger=none", "progress=none", "steps=3", "optimizer=sgd",
        "optimizer._target_=boom_opt.Boom", run_dir=run_dir, check=False,
        env={"PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    log = (run_dir / "run.log").read_text()
    assert "Traceback" in log and "boom from step" in log and "boom_opt.py" in log
