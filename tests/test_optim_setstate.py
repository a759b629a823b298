"""Older torch-style state dicts load into the in-house optimizers as they do into torch's:
param groups saved without ``maximize``/``foreach`` (or any later key) take the defaults,
and a ``step`` saved as a Python number becomes a tensor."""

from __future__ import annotations

import copy

import pytest
import torch

from suite.optim.registry import REGISTRY

INHOUSE = sorted(n for n, s in REGISTRY.items() if s.impl == "inhouse")


def _params() -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(64, 80)), torch.nn.Parameter(torch.randn(7))]


def _step(opt: torch.optim.Optimizer, params: list[torch.nn.Parameter], seed: int) -> None:
    torch.manual_seed(seed)
    for p in params:
        p.grad = torch.randn_like(p)
    opt.step()


def _older(state_dict: dict) -> dict:
    """What an older version saved: fewer group keys, a numeric step."""
    old = copy.deepcopy(state_dict)
    for group in old["param_groups"]:
        for key in ("maximize", "foreach", "amsgrad", "min_8bit_size"):
            group.pop(key, None)
    for state in old["state"].values():
        if "step" in state:
            state["step"] = float(state["step"])
    return old


@pytest.mark.parametrize("name", INHOUSE)
def test_an_older_state_dict_loads_and_steps_like_the_current_one(name):
    spec = REGISTRY[name]
    params = _params()
    opt = spec.build(params, lr=1e-2)
    _step(opt, params, 1)
    saved, weights = opt.state_dict(), [p.detach().clone() for p in params]

    results = []
    for state_dict in (saved, _older(saved)):
        again = [torch.nn.Parameter(w.clone()) for w in weights]
        fresh = spec.build(again, lr=1e-2)
        fresh.load_state_dict(state_dict)
        _step(fresh, again, 2)
        results.append([p.detach() for p in again])
        assert all(k in g for g in fresh.param_groups for k in saved["param_groups"][0])
        assert fresh.state_dict()["param_groups"] == saved["param_groups"]
    for new, old in zip(*results, strict=True):
        torch.testing.assert_close(old, new, rtol=0, atol=0)


def test_fused_is_a_flag_that_pickling_keeps_and_state_dicts_do_not_carry():
    """``fused=True`` picks the fused core; deepcopy and pickle keep it, a state dict
    does not move it (it is the optimizer's path, not a hyperparameter of a group)."""
    import pickle

    from suite.optim import AdamW
    from suite.optim.kernels.adamw import FusedAdamW

    p = [torch.nn.Parameter(torch.randn(3))]
    fused = AdamW(p, fused=True)
    assert fused.fused and not AdamW(p).fused
    assert copy.deepcopy(fused).fused and pickle.loads(pickle.dumps(fused)).fused
    pure = AdamW(p)
    pure.load_state_dict(fused.state_dict())
    assert not pure.fused and "fused" not in pure.param_groups[0]
    assert FusedAdamW(p).fused and not FusedAdamW(p, fused=False).fused
    assert type(FusedAdamW(p)).__mro__[1] is AdamW  # no diamond
