"""Search spaces: every conf/optimizer file declares a valid one; the checker refuses bad ones."""

from __future__ import annotations

import optuna
import pytest

from suite.tune.space import (
    CONF,
    SpaceError,
    check_space,
    load_config,
    load_space,
    overrides,
    suggest,
)

NAMES = sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml"))
BASE = {"lr": 1e-3, "betas": [0.9, 0.999], "weight_decay": 0.0}


@pytest.mark.parametrize("name", NAMES)
def test_every_optimizer_declares_a_valid_space(name):
    space = {p.path: p for p in load_space(name)}
    assert space["lr"].type == "log"
    # custom searches lr only: weight_decay is no argument of every class (issue 23)
    assert ("weight_decay" in space) == (name != "custom")
    cfg = load_config(name)
    if "momentum" in cfg:
        assert space["momentum"].type == "uniform"
    if "betas" in cfg:  # beta2 matters for every optimizer with a second beta
        assert space["betas.1"].type == "one_minus_log"
    if "eps" in cfg:
        assert space["eps"].type == "log"


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"lr": {"type": "loguniform", "low": 1e-4, "high": 1}}, "unknown type 'loguniform'"),
        ({"lr": {"type": "log", "low": 1e-1, "high": 1e-2}}, "must be < high"),
        ({"lr": {"type": "log", "low": 0.0, "high": 1e-2}}, "log bounds must be > 0"),
        ({"momentum": {"type": "uniform", "low": 0.8, "high": 0.9}}, "has no 'momentum'"),
        ({"betas.2": {"type": "one_minus_log", "low": 1e-3, "high": 0.1}}, "has no 'betas.2'"),
        ({"betas.1": {"type": "one_minus_log", "low": 1e-3, "high": 1.5}}, "must be < 1"),
        ({"lr": {"type": "categorical"}}, "non-empty list of choices"),
    ],
)
def test_checker_refuses_a_bad_space(spec, words):
    with pytest.raises(SpaceError, match=words.replace("(", r"\(")):
        check_space({**BASE, "_search_": spec}, "x.yaml")


def test_unknown_optimizer_names_the_choices():
    with pytest.raises(SpaceError, match="unknown optimizer 'nope'; valid: .*adamw"):
        load_space("nope")


def test_a_drawn_point_lies_in_the_space_and_becomes_overrides():
    cfg = load_config("adamw")
    space = load_space("adamw")
    study = optuna.create_study(sampler=optuna.samplers.QMCSampler(seed=0))
    values = suggest(study.ask(), space)
    assert 1e-4 <= values["lr"] <= 3e-2 and 0.9 <= values["betas.1"] <= 0.999
    out = overrides(cfg, values)
    assert [o.split("=")[0] for o in out] == [
        "optimizer.betas",
        "optimizer.eps",
        "optimizer.lr",
        "optimizer.weight_decay",
    ]
    assert out[0] == f"optimizer.betas=[0.9,{values['betas.1']!r}]"
