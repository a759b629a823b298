"""Your own optimizer through `optbench`: the entry checked against its constructor, its
search space (given, or centred on the class's default lr), the record of what ran, and the
candidate's look in plots. Fast: no training here (the wheel test runs it end to end)."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir

from suite import cli, own
from suite.optim import provenance
from suite.report.present.plots import style
from suite.tune.launch import run_command
from suite.tune.space import CONF, SpaceError
from suite.tune.study_config import StudyConfig


class LrFree(torch.optim.Optimizer):
    """A Prodigy-like class: lr = 1 by default, its own step size d; no weight_decay."""

    def __init__(self, params, lr=1.0, d0=1e-6, beta=0.9):
        super().__init__(params, dict(lr=lr, d0=d0, beta=beta))

    def step(self, closure=None):
        return None


TARGET = f"{__name__}.LrFree"


def test_the_default_space_is_centred_on_the_class_default_lr(tmp_path):
    entry = own.from_target(LrFree, {"beta": 0.95}, tmp_path)
    assert entry.config["_search_"] == {"lr": {"type": "log", "low": 0.01, "high": 100.0}}
    written = yaml.safe_load((tmp_path / "optimizer" / "lrfree.yaml").read_text())
    assert written["_target_"] == TARGET and written["lr"] == 1.0 and written["beta"] == 0.95


def test_arguments_the_class_does_not_take_are_refused_not_injected(tmp_path):
    with pytest.raises(SpaceError, match="takes no argument 'weight_decay'; valid: lr, d0, beta"):
        own.from_target(LrFree, {"weight_decay": 0.0}, tmp_path)
    space = {"weight_decay": {"type": "log", "low": 1e-5, "high": 1e-1}}
    with pytest.raises(SpaceError, match=r"_search_.weight_decay: LrFree takes no argument"):
        own.from_target(LrFree, {}, tmp_path, space=space)


def test_a_space_file_replaces_the_yaml_space_and_is_checked_like_the_suites(tmp_path):
    mine = tmp_path / "mine" / "optimizer"
    mine.mkdir(parents=True)
    spec = {"_target_": TARGET, "_search_": {"lr": {"type": "log", "low": 1e-3, "high": 1e-1}}}
    (mine / "lf.yaml").write_text(yaml.safe_dump(spec))
    space = tmp_path / "space.yaml"
    space.write_text(
        yaml.safe_dump({"_search_": {"d0": {"type": "log", "low": 1e-8, "high": 1e-4}}})
    )
    entry = own.from_folder(tmp_path / "mine", "lf", space, tmp_path / "out")
    assert list(entry.config["_search_"]) == ["d0"]
    assert entry.config["d0"] == 1e-6  # not in the YAML: the class's default is the centre
    space.write_text(yaml.safe_dump({"lr": {"type": "log", "low": 1.0, "high": 0.1}}))
    with pytest.raises(SpaceError, match="low 1.0 must be < high 0.1"):
        own.from_folder(tmp_path / "mine", "lf", space, tmp_path / "out")


def test_a_suite_entry_name_is_not_shadowed(tmp_path):
    with pytest.raises(SpaceError, match="'adamw' is a suite entry"):
        own.from_target(LrFree, {}, tmp_path, name="adamw")


def test_custom_injects_no_weight_decay():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["optimizer=custom", f"optimizer._target_={TARGET}"])
    assert "weight_decay" not in cfg.optimizer and "weight_decay" not in cfg.optimizer._search_


def test_every_trial_of_a_study_gets_the_users_folder_on_the_searchpath(tmp_path):
    entry = own.from_target(LrFree, {}, tmp_path / "entry")
    study = StudyConfig("toy", entry.name, 2, tmp_path, config_dir=entry.config_dir)
    assert [p.path for p in study.check()] == ["lr"]
    cmd = run_command(study, 0, ["optimizer.lr=1.0"], tmp_path / "trials" / "0000")
    assert f"hydra.searchpath=[file://{entry.config_dir.resolve()}]" in cmd
    assert f"optimizer={entry.name}" in cmd


def test_the_record_states_every_argument_and_the_package_version():
    make = lambda groups: torch.optim.Adam(groups, lr=0.01)  # noqa: E731
    args = provenance.resolved_arguments(torch.optim.Adam, {"lr": 0.01}, make)
    assert args["built"] and args["arguments"]["lr"] == 0.01
    assert args["arguments"]["eps"] == 1e-8 and args["arguments"]["betas"] == [0.9, 0.999]
    pkg = provenance.package_of("torch.optim.Adam")
    assert pkg["distribution"] == "torch" and pkg["version"] == torch.__version__.split("+")[0]
    mine = provenance.package_of(TARGET)
    assert mine["distribution"] is None and mine["file"].endswith("test_optbench_cli.py")


def test_a_false_state_bits_claim_gets_one_line():
    line = provenance.state_bits_check("my_lion", 8, 32)
    assert line.count("\n") == 0 and "claims state_bits 8" in line and "measures 32" in line
    assert provenance.state_bits_check("adamw", 32, 32) is None


def test_the_candidate_stands_out_and_baselines_are_muted():
    assert style.is_candidate("custom", "torch") and style.is_candidate("lion", "lion_pytorch")
    assert not style.is_candidate("adamw", "inhouse")
    assert style.colour("prodigy", 32, "prodigyopt", "prodigy") in style.CANDIDATE_COLOURS
    assert style.emphasis(True, True)["zorder"] > style.emphasis(False, True)["zorder"]
    assert style.emphasis(False, True)["alpha"] < 1.0
    rgb = [(int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)) for c in style.CANDIDATE_COLOURS]
    shades = [style.OTHER, *style.FAMILY_COLOURS.values()]
    family = [(int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)) for p in shades for c in p]
    assert min(math.dist(a, b) for a in rgb for b in family) >= 75  # no family's look


def test_bad_commands_are_refused_in_one_line(capsys):
    assert cli.main(["nope"]) == 2
    assert (
        "unknown command 'nope'; valid: run, tune, compare, report, bench"
        in capsys.readouterr().err
    )
    assert cli.main(["tune", "--task", "toy", "--space", "s.yaml", "--optimizer", "adamw"]) == 2
    assert "--space is for your own entry" in capsys.readouterr().err
    assert cli.main(["compare", "--target", "nowhere.Opt", "--out", "x"]) == 2
    assert "cannot import" in capsys.readouterr().err


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


def test_prodigy_effective_lr_includes_its_step_size_d():
    """Prodigy keeps v = d^2 EMA(g^2) and steps d*lr*m/(sqrt(v)+d*eps): eff lr is d*lr over
    sqrt(v)/d + eps (telemetry.py), not lr/sqrt(v), which is off by a factor ~1/d^2."""
    from suite.runner.telemetry import effective_lr

    p = torch.zeros(3)
    d, lr, eps = 0.05, 1.0, 1e-8
    v_g = torch.tensor([1e-4, 1e-2, 1.0])  # EMA of g^2
    group = {"lr": lr, "betas": (0.9, 0.999), "eps": eps, "d": d, "d0": 1e-6}
    group |= {"use_bias_correction": False, "k": 10}
    eff = effective_lr({"exp_avg_sq": d * d * v_g}, group, p)
    torch.testing.assert_close(eff, d * lr / (v_g.sqrt() + eps))
    other = {"lr": lr, "betas": (0.9, 0.999), "eps": eps, "d": d, "k": 10}  # D-Adaptation-like
    assert effective_lr({"exp_avg_sq": v_g}, other, p) is None  # unsupported, not wrong


def test_stale_baselines_are_flagged_in_one_line(tmp_path):
    from suite.record import write_json
    from suite.tune.stale import stale_note

    for root, version in (("base", "0.1.0"), ("mine", "0.2.0")):
        run = tmp_path / root / "toy" / "x" / "reruns" / "s1"
        run.mkdir(parents=True)
        env = {"packages": {"optbench": version, "torch": "2.14.1"}, "device": "cpu"}
        write_json(run / "env.json", env)
    note = stale_note(tmp_path / "base", tmp_path / "mine")
    assert "optbench 0.1.0 (baselines) vs 0.2.0 (yours)" in note and "\n" not in note
    assert stale_note(tmp_path / "base", tmp_path / "base") is None
