"""In-house 32-bit optimizers against torch.optim, and their two code paths against each other.

Every ``inhouse`` 32-bit registry entry is run next to the ``torch`` entry of the same
family with the same fixed options (``adamw`` <-> ``torch_adamw``, ``adamw_forloop`` <->
``torch_adamw_forloop``, ...) for 100 steps on the same random problem: a few tensors of
odd shapes, fresh gradients from a fixed generator each step, one tensor that gets no
gradient every third step (so per-tensor step counts differ). Largest relative
difference allowed: 1e-6 in float32, 1e-12 in float64.
"""

from __future__ import annotations

import pytest
import torch

import suite.optim.adam as adam_module
from suite.optim.registry import REGISTRY, OptimSpec

STEPS = 100
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
SHAPES = [(7, 13), (129,), (3, 5, 11), (64, 33), (1,)]

INHOUSE_32 = [s for s in REGISTRY.values() if s.impl == "inhouse" and s.state_bits == 32]

# Options per family: (id, hyperparameters, or a list of per-group overrides for groups).
OPTIONS = {
    "sgd": [
        ("plain", dict(lr=0.05)),
        ("momentum", dict(lr=0.05, momentum=0.9)),
        ("dampening_wd", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
        ("nesterov", dict(lr=0.05, momentum=0.9, nesterov=True)),
        (
            "nesterov_wd_maximize",
            dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1, maximize=True),
        ),
        (
            "groups",
            [
                dict(lr=0.05, momentum=0.9),
                dict(lr=0.01, weight_decay=0.1),
                dict(lr=0.02, momentum=0.8, nesterov=True, maximize=True),
            ],
        ),
    ],
    "adam": [
        ("plain", dict(lr=1e-2)),
        ("weight_decay", dict(lr=1e-2, weight_decay=0.1)),
        ("amsgrad", dict(lr=1e-2, amsgrad=True, betas=(0.8, 0.99))),
        ("maximize_wd", dict(lr=1e-2, maximize=True, weight_decay=0.1, eps=1e-6)),
        (
            "groups",
            [
                dict(lr=1e-2, weight_decay=0.0),
                dict(lr=3e-3, weight_decay=0.2, amsgrad=True),
                dict(lr=1e-3, betas=(0.5, 0.9), eps=1e-3, maximize=True),
            ],
        ),
    ],
}
OPTIONS["adamw"] = OPTIONS["adam"]


@pytest.fixture(autouse=True)
def one_thread():
    """Elementwise results do not depend on the thread count, and on a busy 2-core
    machine every 2-thread parallel region can wait a scheduler slice (~15 ms)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torch_twin(spec: OptimSpec) -> OptimSpec:
    """The torch entry of the same family with the same fixed options (foreach defaults
    True); our ``fused`` (a flag of the same class) is matched against torch's default
    path, as before it became a flag."""
    wanted = {"foreach": True, **{k: v for k, v in spec.fixed.items() if k != "fused"}}
    (twin,) = [
        s
        for s in REGISTRY.values()
        if s.impl == "torch" and s.family == spec.family and dict(s.fixed) == wanted
    ]
    return twin


def run(build, dtype: torch.dtype, options, steps: int = STEPS) -> tuple[list, object]:
    """``steps`` updates of fresh tensors; the same random problem for every ``build``."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen, dtype=dtype) for s in SHAPES]
    if isinstance(options, list):  # one group per override, the rest of params in group 0
        groups = [{"params": params[i :: len(options)], **o} for i, o in enumerate(options)]
        opt = build(groups)
    else:
        opt = build(params, **options)
    for t in range(steps):
        for i, p in enumerate(params):
            # tensor 2 skips every third step; gradient scales vary over tensors and time
            skip = i == 2 and t % 3 == 0
            scale = 10.0 ** ((i + t) % 5 - 2)
            g = torch.randn(p.shape, generator=gen, dtype=dtype) * scale
            p.grad = None if skip else g
        opt.step()
    return params, opt


def rel_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(
        ((x - y).abs().max() / y.abs().max().clamp_min(1e-30)).item()
        for x, y in zip(a, b, strict=True)
    )


def cases():
    for spec in INHOUSE_32:
        for opt_id, options in OPTIONS[spec.family]:
            for dtype in TOL:
                yield pytest.param(
                    spec, options, dtype, id=f"{spec.name}-{opt_id}-{str(dtype)[6:]}"
                )


def builder(spec: OptimSpec, **extra):
    """Build ``spec`` on params or groups; lr 1e-3 unless the options give one."""
    return lambda params, **hyper: spec.build(params, **{"lr": 1e-3, **hyper, **extra})


def test_every_inhouse_32bit_entry_has_a_torch_twin():
    assert {s.name for s in INHOUSE_32} >= {"sgd", "adam", "adamw", "adamw_forloop"}
    for spec in INHOUSE_32:
        torch_twin(spec)


@pytest.mark.parametrize("spec, options, dtype", cases())
def test_matches_torch(spec, options, dtype, monkeypatch):
    # Small CPU blocks: the (64, 33) tensor is cut into chunks, small ones share a block.
    monkeypatch.setattr(adam_module, "CPU_BLOCK_NUMEL", 500)
    ours, opt = run(builder(spec), dtype, options)
    theirs, ref = run(builder(torch_twin(spec)), dtype, options)
    assert rel_diff(ours, theirs) <= TOL[dtype]
    # the state too, name by name
    for p, q in zip(ours, theirs, strict=True):
        s, r = opt.state[p], ref.state[q]
        assert s.keys() == r.keys()
        moments = [k for k in s if k != "step"]
        if moments:
            assert rel_diff([s[k] for k in moments], [r[k] for k in moments]) <= TOL[dtype]
        if "step" in s:
            assert s["step"].item() == r["step"].item()


def single_vs_foreach_cases():
    for spec in INHOUSE_32:
        if spec.fixed.get("foreach", True) is False:
            continue  # a for-loop entry: the plain entry of its family covers both paths
        blocks = [None] if spec.family == "sgd" else [None, 64]  # SGD does not block
        for opt_id, options in OPTIONS[spec.family]:
            for dtype in TOL:
                for block in blocks:
                    yield pytest.param(
                        spec,
                        options,
                        dtype,
                        block,
                        id=f"{spec.name}-{opt_id}-{str(dtype)[6:]}-block{block}",
                    )


@pytest.mark.parametrize("spec, options, dtype, block", single_vs_foreach_cases())
def test_foreach_matches_single_tensor(spec, options, dtype, block, monkeypatch):
    monkeypatch.setattr(adam_module, "CPU_BLOCK_NUMEL", block)
    fast, _ = run(builder(spec, foreach=True), dtype, options, steps=30)
    ref, _ = run(builder(spec, foreach=False), dtype, options, steps=30)
    assert rel_diff(fast, ref) <= TOL[dtype]
