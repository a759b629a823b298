"""The CPU checks again on a CUDA device: parity with torch.optim (foreach and fused) and
bitsandbytes, bf16 parameters, and a tiny run of every task through ``suite.run``.

Every test here is marked ``gpu`` and skips where ``torch.cuda.is_available()`` is False
(``pytest -m gpu`` selects them; ``make test`` leaves them out). The problems and step
budgets are those of tests/test_optim_parity.py and tests/test_optim_8bit.py, on
``device="cuda"``. Tolerances: float32 relative 1e-5 (1e-6 on the CPU), float64 1e-10
(1e-12 on the CPU): torch's fused kernels compute in one pass with fused multiply-adds and
another order of operations, so they agree with a foreach step to a few ulp per step, not
bit for bit. bf16: torch's own bf16 tolerance (rtol 1.6e-2).
"""

from __future__ import annotations

import math

import pytest
import torch

from suite import record
from suite.optim.entry import describe, train_mode
from suite.optim.quant import BLOCKSIZE, dequantize_blockwise, dynamic_map, num_blocks
from suite.optim.registry import REGISTRY, OptimSpec
from suite.tasks import TASKS
from tests.conftest import run_suite
from tests.test_optim_8bit import CASES, MID, SMALL, STATE_NAMES
from tests.test_optim_parity import INHOUSE_32, OPTIONS, SHAPES, STEPS, rel_diff, torch_twin

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available())"
    ),
]

CUDA = "cuda"
PEAK_KIND = "cuda_max_allocated"  # what suite.runner.peak_memory records for a CUDA run
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


# --------------------------------------------------------------------------- 32-bit parity


def run(
    build, dtype: torch.dtype, options, steps: int = STEPS, phase: int = 0
) -> tuple[list, object]:
    """tests/test_optim_parity.py's problem on the GPU: the same values (drawn on the CPU
    from one generator), one tensor without a gradient every third step (from step
    ``phase``)."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen, dtype=dtype).to(CUDA) for s in SHAPES]
    if isinstance(options, list):
        groups = [{"params": params[i :: len(options)], **o} for i, o in enumerate(options)]
        opt = build(groups)
    else:
        opt = build(params, **options)
    for t in range(steps):
        for i, p in enumerate(params):
            skip = i == 2 and t % 3 == phase
            scale = 10.0 ** ((i + t) % 5 - 2)
            g = torch.randn(p.shape, generator=gen, dtype=dtype) * scale
            p.grad = None if skip else g.to(CUDA)
        opt.step()
    return params, opt


def builder(cls_or_spec, **extra):
    """Build an entry (an OptimSpec) or a torch class with ``extra``; lr 1e-3 by default."""
    if isinstance(cls_or_spec, OptimSpec):
        return lambda params, **hyper: cls_or_spec.build(params, **{"lr": 1e-3, **hyper, **extra})
    return lambda params, **hyper: cls_or_spec(params, **{"lr": 1e-3, **hyper, **extra})


def cases():
    for spec in INHOUSE_32:
        for opt_id, options in OPTIONS[spec.family]:
            for dtype in TOL:
                for ref in ("foreach", "fused"):
                    yield pytest.param(
                        spec, options, dtype, ref, id=f"{spec.name}-{opt_id}-{str(dtype)[6:]}-{ref}"
                    )


def reference(spec: OptimSpec, ref: str):
    """torch's twin of ``spec``: the registry entry of the same family and fixed options
    (foreach or for-loop), or torch's fused kernel of that family."""
    twin = torch_twin(spec)
    if ref == "fused":
        return builder(twin.cls(), fused=True)
    return builder(twin)


@pytest.mark.parametrize("spec, options, dtype, ref", cases())
def test_matches_torch_on_cuda(spec, options, dtype, ref):
    # torch's fused SGD with momentum makes its buffers on the first step for all tensors or
    # none: a tensor with no gradient on step 0 breaks it (TypeError), so skip from step 1
    phase = 1 if ref == "fused" and spec.family == "sgd" else 0
    ours, opt = run(builder(spec), dtype, options, phase=phase)
    theirs, torch_opt = run(reference(spec, ref), dtype, options, phase=phase)
    assert all(p.device.type == CUDA for p in ours)
    assert rel_diff(ours, theirs) <= TOL[dtype]
    for p, q in zip(ours, theirs, strict=True):
        s, r = opt.state[p], torch_opt.state[q]
        if ref == "foreach":
            assert s.keys() == r.keys()
        moments = [k for k in s if k != "step"]
        assert set(moments) <= set(r)
        if moments:
            assert rel_diff([s[k] for k in moments], [r[k] for k in moments]) <= TOL[dtype]
            assert all(s[k].device.type == CUDA for k in moments)
        if "step" in s:
            assert s["step"].item() == r["step"].item()


@pytest.mark.parametrize(
    "spec", [s for s in INHOUSE_32 if s.fixed.get("foreach", True)], ids=lambda s: s.name
)
def test_foreach_matches_single_tensor_on_cuda(spec):
    for _, options in OPTIONS[spec.family]:
        fast, _ = run(builder(spec, foreach=True), torch.float32, options, steps=30)
        ref, _ = run(builder(spec, foreach=False), torch.float32, options, steps=30)
        assert rel_diff(fast, ref) <= TOL[torch.float32]


# --------------------------------------------------------------------------- 8-bit


def build8(impl: str, family: str, params, **hyper) -> torch.optim.Optimizer:
    if impl == "bnb":
        pytest.importorskip("bitsandbytes")
    return REGISTRY[("bnb_" if impl == "bnb" else "") + family + "8bit"].build(params, **hyper)


def moments(opt: torch.optim.Optimizer, p: torch.Tensor, impl: str) -> list[torch.Tensor]:
    state = opt.state[p]
    out = []
    for codes, absmax, qmap in STATE_NAMES[impl]:
        if state[codes].dtype == torch.uint8:
            out.append(dequantize_blockwise(state[codes], state[absmax], state[qmap]))
        else:
            out.append(state[codes])
    return out


def blocks(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(-1)
    out = torch.zeros(num_blocks(flat.numel()) * BLOCKSIZE, device=x.device)
    out[: flat.numel()] = flat
    return out.view(-1, BLOCKSIZE)


def adam32(family: str, params, **hyper) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if family == "adamw" else torch.optim.Adam
    return cls(params, foreach=False, **hyper)


@pytest.mark.parametrize("impl,family,wd", CASES, ids=[f"{i}-{f}" for i, f, _ in CASES])
def test_within_bitsandbytes_error_budget_on_cuda(impl, family, wd):
    """tests/test_optim_8bit.py's protocol and budget on the GPU: each of 50 steps from the
    same state, 8-bit vs 32-bit torch: mean |dp| < 6e-5, mean |dp|/|p| < 6e-4, fewer than
    20 moment values off by more than atol 3e-3 + rtol 1e-3; ours also within the
    quantizer's per-block bound. The float32 small tensor: rtol 1e-5 (1e-6 on the CPU)."""
    gen = torch.Generator().manual_seed(0)
    p32 = [(torch.randn(s, generator=gen) * 0.1).to(CUDA) for s in (MID, SMALL)]
    p8 = [p.clone() for p in p32]
    ref = adam32(family, p32, weight_decay=wd)
    opt = build8(impl, family, p8, weight_decay=wd)
    half_gaps = [
        ((q[1:] - q[:-1]).max() / 2).item() for q in (dynamic_map(True), dynamic_map(False))
    ]
    for _ in range(50):
        g = [(torch.randn(p.shape, generator=gen) * 0.01).to(CUDA) for p in p32]
        for a, b, gi in zip(p32, p8, g, strict=True):
            a.grad, b.grad = gi.clone(), gi.clone()
        ref.step()
        opt.step()
        err = (p32[0] - p8[0]).abs()
        assert err.mean() < 6e-5 and (err / (p32[0].abs() + 1e-9)).mean() < 6e-4
        exact = [ref.state[p32[0]][k] for k in ("exp_avg", "exp_avg_sq")]
        mine = moments(opt, p8[0], impl)
        assert opt.state[p8[0]][STATE_NAMES[impl][0][0]].dtype == torch.uint8
        for i in range(2):
            assert int((~torch.isclose(exact[i], mine[i], atol=3e-3, rtol=1e-3)).sum()) < 20
            if impl == "inhouse":
                a = opt.state[p8[0]][STATE_NAMES[impl][i][1]]
                bound = half_gaps[i] * a + 4 * torch.finfo(torch.float32).eps * a
                assert bool((blocks(mine[i] - exact[i]).abs().amax(1) <= bound).all())
        tol = dict(rtol=1e-5, atol=1e-7) if impl == "inhouse" else dict(rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(p8[1], p32[1], **tol)
        p32[0].copy_(p8[0])
        exact[0].copy_(mine[0])
        exact[1].copy_(mine[1])


@pytest.mark.parametrize("family", ["adamw", "adam"])
def test_drift_no_worse_than_bitsandbytes_on_cuda(family):
    """50 steps on their own: ours drifts from 32-bit torch by < 4% of the distance moved
    and by no more than 1.1x what bitsandbytes' CUDA kernel drifts."""
    pytest.importorskip("bitsandbytes")
    gen = torch.Generator().manual_seed(1)
    start = (torch.randn((257, 255), generator=gen) * 0.1).to(CUDA)
    ps = [start.clone() for _ in range(3)]
    wd = 1e-2 if family == "adamw" else 0.0
    opts = [
        adam32(family, [ps[0]], weight_decay=wd),
        build8("inhouse", family, [ps[1]], weight_decay=wd),
        build8("bnb", family, [ps[2]], weight_decay=wd),
    ]
    for _ in range(50):
        g = (torch.randn((257, 255), generator=gen) * 0.01).to(CUDA)
        for p, opt in zip(ps, opts, strict=True):
            p.grad = g.clone()
            opt.step()
    moved = (ps[0] - start).abs().mean()
    ours, theirs = ((p - ps[0]).abs().mean() for p in ps[1:])
    assert ours < 0.04 * moved
    assert ours <= 1.1 * theirs


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_entry_steps_on_cuda_with_the_state_it_claims(name):
    spec = REGISTRY[name]
    if spec.impl == "bnb":
        pytest.importorskip("bitsandbytes")
    big = torch.nn.Parameter(torch.randn(64, 64, device=CUDA))  # 4096: the 8-bit threshold
    small = torch.nn.Parameter(torch.randn(10, device=CUDA))
    hyper = dict(lr=1e-3, momentum=0.9) if spec.family == "sgd" else dict(lr=1e-3)
    opt = spec.build([big, small], **hyper)
    train_mode(opt)  # Schedule-Free
    before = big.detach().clone()
    big.grad, small.grad = torch.randn_like(big), torch.randn_like(small)
    opt.step()
    assert not torch.equal(before, big.detach())
    tensors = [v for v in opt.state[big].values() if torch.is_tensor(v) and v.numel() > 1]
    assert tensors and all(v.device.type == CUDA for v in tensors)
    assert describe(opt)["state_bits"] == spec.state_bits, name  # measured, as claimed


# --------------------------------------------------------------------------- bf16


@pytest.mark.parametrize("name", ["adamw", "adamw_forloop"])
def test_bf16_params_track_torch_adamw(name):
    """In-house AdamW on bf16 parameters (bf16 moments, as torch keeps them) against torch
    AdamW on the same bf16 parameters: within torch's bf16 tolerance, and no further from a
    float32 run than torch's bf16 run is."""
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(s, generator=gen) for s in SHAPES]
    hyper = dict(lr=1e-2, weight_decay=0.1)
    ours = [p.to(CUDA, torch.bfloat16) for p in start]
    theirs = [p.to(CUDA, torch.bfloat16) for p in start]
    full = [p.to(CUDA) for p in start]
    opts = [
        REGISTRY[name].build(ours, **hyper),
        torch_twin(REGISTRY[name]).build(theirs, **hyper),
        torch.optim.AdamW(full, **hyper),
    ]
    for _ in range(50):
        g = [torch.randn(s, generator=gen).to(CUDA) for s in SHAPES]
        for params in (ours, theirs, full):
            for p, gi in zip(params, g, strict=True):
                p.grad = gi.to(p.dtype)
        for opt in opts:
            opt.step()
    assert all(p.dtype == torch.bfloat16 for p in ours)
    assert opts[0].state[ours[0]]["exp_avg"].dtype == torch.bfloat16
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1.6e-2, atol=1e-5)

    def drift(params: list[torch.Tensor]) -> float:
        return sum((p.float() - f).abs().sum().item() for p, f in zip(params, full, strict=True))

    assert drift(ours) <= 1.1 * drift(theirs) + 1e-6


# --------------------------------------------------------------------------- tiny runs

# one config per task family in TASKS; digits ship with scikit-learn, Tiny Shakespeare is
# read from OPTBENCH_DATA (tests/conftest.py points it at ../shared/data) or downloaded
TINY = {"toy": "toy", "cnn": "cnn_digits", "vit": "vit_digits", "lm": "lm_shakespeare"}
FAST = ("device=cuda", "steps=5", "eval_every=0", "log_every=1", "logger=none", "progress=plain")


def check_cuda_run(run_dir, steps: int = 5) -> dict:
    s = record.read_summary(run_dir)
    assert s["status"] == "ok", s.get("error") or s.get("diagnosis")
    assert s["steps"] == steps and s["peak_memory_kind"] == PEAK_KIND
    assert math.isfinite(s["final_train_loss"]) and s["median_step_time_s"] > 0
    env = record.read_jsonl(run_dir / "metrics.jsonl")
    assert [e["step"] for e in env if e["event"] == "eval"] == [steps]
    return s


def test_tiny_covers_every_task():
    assert set(TINY) == set(TASKS)


@pytest.mark.parametrize("task", sorted(TINY))
def test_tiny_run_of_each_task_on_cuda(task, tmp_path):
    run_dir = tmp_path / "run"
    run_suite(f"task={TINY[task]}", "optimizer=adamw", *FAST, run_dir=run_dir)
    check_cuda_run(run_dir)


def test_tiny_lm_run_bf16_autocast_8bit(tmp_path):
    run_dir = tmp_path / "run"
    run_suite("task=lm_shakespeare", "optimizer=adamw8bit", "amp=bf16", *FAST, run_dir=run_dir)
    check_cuda_run(run_dir)


def test_tiny_run_of_every_registry_entry_on_cuda(tmp_path):
    """One Hydra multirun on the toy task over every entry: each must finish ok on cuda."""
    sweep = tmp_path / "sweep"
    names = sorted(REGISTRY)
    run_suite(
        "task=toy",
        f"optimizer={','.join(names)}",
        *FAST,
        f"hydra.sweep.dir={sweep}",
        multirun=True,
        timeout=600,
    )
    done = {check_cuda_run(d)["optimizer"] for d in record.find_runs(sweep)}
    assert done == set(names)
