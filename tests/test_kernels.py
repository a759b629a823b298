"""Fused optimizer steps (suite/optim/kernels) against the pure-torch in-house ones:
AdamW/Adam, SGD with momentum, 8-bit AdamW/Adam, on both fused paths a CPU can run.

The ``fused_path`` fixture runs a test on each: ``cpp``, the C++/OpenMP extension that
steps CPU tensors (suite/optim/kernels/cpu.py; built once per session by the
``cpu_extension`` fixture, skipped with the reason where it cannot be built), and
``triton``, the Triton kernels through Triton's interpreter: ``TRITON_INTERPRET=1`` for
one test only. Triton is already imported by then (this
module imports it; torch may too): the kernels are wrapped by ``triton.jit`` on first use
in each mode, so the variable still takes effect, and other test modules in the process
never see it. (For the same reason the kernels use no ``triton.jit`` helpers of
``triton.language``, such as ``tl.max``: see suite/optim/kernels/__init__.py.) Each such
test also checks that the kernel did the work (a spy on the launch, Triton's or the
extension's), since a silent fallback to the pure path would pass any comparison. Problems are tiny (1..1025 values,
3-5 steps): the interpreter runs every program in numpy.

The compiled kernels are checked here too, without a GPU: they compile for sm_90 (Triton
ships ptxas). On a CUDA machine the ``gpu`` tests compare them with torch's fused
optimizers and the pure 8-bit path.
"""

from __future__ import annotations

import pytest
import torch

import suite.optim.kernels.adam8bit as fused_8bit_module
import suite.optim.kernels.adamw as fused_adam_module
import suite.optim.kernels.sgd as fused_sgd_module
from suite.optim.adam import Adam, AdamW
from suite.optim.adam8bit import Adam8bit, AdamW8bit
from suite.optim.kernels import cpu, kernel_device
from suite.optim.kernels.adam8bit import FusedAdam8bit, FusedAdamW8bit
from suite.optim.kernels.adamw import FusedAdam, FusedAdamW
from suite.optim.kernels.sgd import FusedSGD
from suite.optim.sgd import SGD

triton = pytest.importorskip("triton")

SHAPES = [(1,), (37,), (12, 25), (1025,)]
STEPS = 5
PAIRS = {"adam": (FusedAdam, Adam), "adamw": (FusedAdamW, AdamW)}
OPTIONS = {
    "plain": dict(lr=1e-2, weight_decay=0.0),
    "weight_decay": dict(lr=1e-2, weight_decay=0.1),
    "amsgrad_maximize": dict(lr=1e-2, weight_decay=0.1, amsgrad=True, maximize=True, eps=1e-6),
}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=["cpp", "triton"])
def fused_path(request, monkeypatch) -> str:
    """The fused path under test on a CPU: the C++ extension, or Triton's interpreter."""
    if request.param == "cpp":
        request.getfixturevalue("cpu_extension")
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)
        monkeypatch.delenv("OPTBENCH_NO_CPP", raising=False)
    else:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    return request.param


@pytest.fixture
def launches(monkeypatch) -> list[int]:
    """Values each fused update (one group of tensors) covered, update by update."""
    seen: list[int] = []
    for module in (fused_adam_module, fused_sgd_module, fused_8bit_module):
        for name in ("launch", "cpu_launch"):
            real = getattr(module, name)

            def spy(kernel, rows, real=real, **kw):
                seen.append(sum(r[0].numel() for r in rows))
                return real(kernel, rows, **kw)

            monkeypatch.setattr(module, name, spy)
    return seen


def run(build, dtype=torch.float32, steps=STEPS, device="cpu", via=None, skip=True):
    """``steps`` updates from a fixed random start; tensor 2 has no gradient on steps 0
    and 3 (unless not ``skip``), so step counts differ between tensors (two launches per
    step then). Every value drawn is first rounded to ``via`` (default: ``dtype``)."""
    gen = torch.Generator().manual_seed(0)

    def draw(shape, scale=1.0):
        return (torch.randn(shape, generator=gen) * scale).to(via or dtype).to(device, dtype)

    params = [draw(s) for s in SHAPES]
    opt = build(params)
    for t in range(steps):
        for i, p in enumerate(params):
            g = draw(p.shape, 10.0 ** (i - 1))
            p.grad = None if skip and i == 2 and t % 3 == 0 else g
        opt.step()
    return params, opt


def rel_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(
        ((x.double() - y.double()).abs().max() / y.double().abs().max().clamp_min(1e-30)).item()
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("family", sorted(PAIRS))
def test_kernel_matches_inhouse_float32(family, option, fused_path, launches):
    fused, pure = PAIRS[family]
    hyper = OPTIONS[option]
    ours, opt = run(lambda ps: fused(ps, **hyper))
    theirs, ref = run(lambda ps: pure(ps, **hyper))
    assert sum(launches) == sum(STEPS * p.numel() for p in ours) - 2 * ours[2].numel()
    assert rel_diff(ours, theirs) <= 1e-6
    for p, q in zip(ours, theirs, strict=True):
        s, r = opt.state[p], ref.state[q]
        assert s.keys() == r.keys()
        assert s["step"].item() == r["step"].item() and s["step"].device.type == "cpu"
        moments = [k for k in s if k != "step"]
        assert rel_diff([s[k] for k in moments], [r[k] for k in moments]) <= 1e-6


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_kernel_half_params_round_once(dtype, fused_path, launches):
    """bf16/fp16 params (and moments, kept in the param dtype as torch does): the kernel
    computes in float32 and rounds once per step, so it tracks a float32 run from the same
    start within a rounding per step, and at least as closely as the pure path (which
    rounds after every op)."""
    hyper = dict(lr=1e-2, weight_decay=0.1)
    ours, opt = run(lambda ps: FusedAdamW(ps, **hyper), dtype=dtype)
    pure, _ = run(lambda ps: AdamW(ps, **hyper), dtype=dtype)
    full, _ = run(lambda ps: AdamW(ps, **hyper), via=dtype)  # float32, same rounded values
    if fused_path == "cpp" and dtype == torch.float16:  # float32/bf16 only: the pure path
        assert not launches and all(torch.equal(a, b) for a, b in zip(ours, pure, strict=True))
        return
    assert launches and all(p.dtype == dtype for p in ours)
    assert opt.state[ours[0]]["exp_avg"].dtype == dtype
    # storing p rounds it by up to half an ulp per step: at most STEPS * eps relative
    tol = STEPS * torch.finfo(dtype).eps
    for a, b in zip(ours, full, strict=True):
        torch.testing.assert_close(a.float(), b, rtol=tol, atol=tol * hyper["lr"])

    def drift(params):
        return sum((p.float() - f).abs().sum().item() for p, f in zip(params, full, strict=True))

    assert drift(ours) <= drift(pure)


def test_state_dict_moves_between_fused_and_pure(fused_path, launches):
    """Two steps with one optimizer, then its state dict loaded into the other (fused into
    pure and pure into fused): two more steps land where four uninterrupted steps do."""
    hyper = dict(lr=1e-2, weight_decay=0.1, amsgrad=True)
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(s, generator=gen) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen) for s in SHAPES] for _ in range(4)]
    grads[0][2] = grads[3][2] = None  # tensor 2 lags a step behind

    def drive(opt, params, steps):
        for gs in steps:
            for p, g in zip(params, gs, strict=True):
                p.grad = None if g is None else g.clone()
            opt.step()

    straight = [p.clone() for p in start]
    drive(AdamW(straight, **hyper), straight, grads)
    for first, second in ((FusedAdamW, AdamW), (AdamW, FusedAdamW)):
        params = [p.clone() for p in start]
        opt = first(params, **hyper)
        drive(opt, params, grads[:2])
        resumed = second(params, **hyper)
        resumed.load_state_dict(opt.state_dict())
        drive(resumed, params, grads[2:])
        assert rel_diff(params, straight) <= 1e-6
        assert resumed.state[params[2]]["step"].item() == 2
    assert launches  # the fused halves ran the kernel


def test_layouts_the_kernel_cannot_walk_fall_back(fused_path, launches):
    """Dense tensors with equal strides (contiguous, transposed, channels-last) go to the
    kernel; a strided view, or a gradient laid out unlike its param, to the pure path."""
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(6, 10, generator=gen)
    params = [
        torch.randn(2, 3, 4, 5, generator=gen).to(memory_format=torch.channels_last),
        torch.randn(10, 6, generator=gen).t(),  # dense, transposed
        base[:, ::2],  # not dense
        torch.randn(7, 3, generator=gen),  # gets a transposed (differently strided) grad
    ]
    twins = [p.clone(memory_format=torch.preserve_format) for p in params]
    opt, ref = FusedAdamW(params, lr=1e-2), AdamW(twins, lr=1e-2)
    for _ in range(3):
        for i, (p, q) in enumerate(zip(params, twins, strict=True)):
            g = torch.randn(p.shape, generator=gen)
            if i == 0:
                g = g.contiguous(memory_format=torch.channels_last)
            elif i == 1:
                g = g.t().contiguous().t()  # strides like p
            elif i == 3:
                g = g.t().contiguous().t()  # column-major grad of a row-major param
            p.grad, q.grad = g, g.clone(memory_format=torch.preserve_format)
        opt.step()
        ref.step()
    assert launches == [params[0].numel() + params[1].numel()] * 3
    assert rel_diff(params, twins) <= 1e-6


def test_float64_falls_back_to_the_pure_path(fused_path, launches):
    ours, _ = run(lambda ps: FusedAdamW(ps, lr=1e-2), dtype=torch.float64)
    theirs, _ = run(lambda ps: AdamW(ps, lr=1e-2), dtype=torch.float64)
    assert not launches
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


@pytest.mark.parametrize("foreach", [True, False])
def test_without_interpreter_or_extension_cpu_runs_the_pure_path_bit_for_bit(
    foreach, launches, monkeypatch
):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setenv("OPTBENCH_NO_CPP", "1")
    assert not kernel_device(torch.device("cpu")) and not cpu.available()
    hyper = dict(lr=1e-2, weight_decay=0.1, amsgrad=True, foreach=foreach)
    ours, opt = run(lambda ps: FusedAdamW(ps, **hyper))
    theirs, ref = run(lambda ps: AdamW(ps, **hyper))
    assert not launches
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert opt.state_dict()["state"].keys() == ref.state_dict()["state"].keys()


SGD_OPTIONS = {
    "plain": dict(lr=0.05),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening_wd": dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    "nesterov_wd_maximize": dict(
        lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1, maximize=True
    ),
}


@pytest.mark.parametrize("option", sorted(SGD_OPTIONS))
def test_sgd_kernel_matches_inhouse_float32(option, fused_path, launches):
    """Tensor 2 gets its first gradient a step late: its buffer starts (FIRST) in a
    launch of its own while the others update theirs."""
    hyper = SGD_OPTIONS[option]
    ours, opt = run(lambda ps: FusedSGD(ps, **hyper))
    theirs, ref = run(lambda ps: SGD(ps, **hyper))
    assert sum(launches) == sum(STEPS * p.numel() for p in ours) - 2 * ours[2].numel()
    assert rel_diff(ours, theirs) <= 1e-6
    for p, q in zip(ours, theirs, strict=True):
        assert opt.state[p].keys() == ref.state[q].keys()
        if "momentum_buffer" in ref.state[q]:
            buf = opt.state[p]["momentum_buffer"]
            assert buf.dtype == p.dtype and buf is not p.grad
            assert rel_diff([buf], [ref.state[q]["momentum_buffer"]]) <= 1e-6


def test_sgd_kernel_bf16_and_grads_untouched(fused_path, launches):
    hyper = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)
    ours, opt = run(lambda ps: FusedSGD(ps, **hyper), dtype=torch.bfloat16)
    full, _ = run(lambda ps: SGD(ps, **hyper), via=torch.bfloat16)
    assert launches and opt.state[ours[0]]["momentum_buffer"].dtype == torch.bfloat16
    # rounded once per step, relative to the largest value on the way (max |p| grows)
    assert rel_diff(ours, full) <= STEPS * torch.finfo(torch.bfloat16).eps
    grads = [p.grad.clone() for p in ours]
    opt.step()
    assert all(torch.equal(p.grad, g) for p, g in zip(ours, grads, strict=True))


PAIRS_8BIT = {"adam8bit": (FusedAdam8bit, Adam8bit), "adamw8bit": (FusedAdamW8bit, AdamW8bit)}
SHAPES_8BIT = [(300,), (2, 256), (513,), (37,)]  # 8-bit from 256 values; 37: float32 moments


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("family", sorted(PAIRS_8BIT))
def test_8bit_kernel_matches_inhouse(family, dtype, fused_path, launches):
    """Dequantize, update, requantize in one pass: the same codes, absmax and params as
    the pure 8-bit path after 3 steps (the 37-value tensor keeps float32 moments: the pure
    path steps it under Triton, the 32-bit kernel under cpp). A code may be one off where a moment sits on a midpoint between map
    values to within an ulp (torch's CPU lerp fuses a multiply-add, numpy does not): one
    code of ~8000, in the bf16 Adam case."""
    fused, pure = PAIRS_8BIT[family]
    hyper = dict(lr=1e-2, weight_decay=0.1, maximize=family == "adam8bit", min_8bit_size=256)

    ours, opt = run8(lambda ps: fused(ps, **hyper), dtype)
    theirs, ref = run8(lambda ps: pure(ps, **hyper), dtype)
    stepped = ours if fused_path == "cpp" else ours[:3]  # cpp: float32 moments too
    assert sum(launches) == 3 * sum(p.numel() for p in stepped)
    tol = 1e-6 if dtype == torch.float32 else torch.finfo(dtype).eps  # one rounding apart
    assert rel_diff(ours, theirs) <= tol
    same_8bit_state(opt, ref, ours, theirs)


def test_8bit_small_second_moments_keep_code_1_on_every_path(fused_path):
    """One large gradient per block, the rest 1e-5 of it: their v/absmax (~1e-10) rounds
    to the map's 0 but is positive, so every path gives it code 1 (adam8bit.keep_positive_)
    and the fused paths stay the pure path's codes, absmax and params exactly."""
    hyper = dict(lr=1e-3, eps=1e-10, weight_decay=0.0, min_8bit_size=256)
    runs = []
    for cls in (FusedAdamW8bit, AdamW8bit):
        p = torch.zeros(2 * 256 + 40)
        opt = cls([p], **hyper)
        for _ in range(4):
            g = torch.full_like(p, 1e-5)
            g[::256] = 1.0
            p.grad = g
            opt.step()
        runs.append((p, opt))
    (p, opt), (q, ref) = runs
    for o, x in ((opt, p), (ref, q)):
        codes = o.state[x]["exp_avg_sq"]
        assert int((codes == 0).sum()) == 0 and int((codes == 1).sum()) == p.numel() - 3
    assert torch.equal(p, q)
    same_8bit_state(opt, ref, [p], [q], codes_off=0, gap=0, absmax_tol=0)


def run8(build, dtype, device="cpu", steps=3):
    gen = torch.Generator().manual_seed(0)
    params = [(torch.randn(s, generator=gen) * 0.1).to(device, dtype) for s in SHAPES_8BIT]
    opt = build(params)
    for _ in range(steps):
        for p in params:
            p.grad = (torch.randn(p.shape, generator=gen) * 0.01).to(device, dtype)
        opt.step()
    return params, opt


def same_8bit_state(opt, ref, ours, theirs, codes_off=1e-3, gap=1, absmax_tol=1e-6):
    """The same state names, dtypes, shapes and steps; codes ``gap`` apart at most, in at
    most a ``codes_off`` fraction of values; absmax within ``absmax_tol`` relative."""
    for p, q in zip(ours, theirs, strict=True):
        s, r = opt.state[p], ref.state[q]
        assert s.keys() == r.keys()
        assert all(s[k].dtype == r[k].dtype and s[k].shape == r[k].shape for k in s)
        if s["exp_avg"].dtype == torch.uint8:
            for k in ("exp_avg", "exp_avg_sq"):
                diff = (s[k].int() - r[k].int()).abs()
                assert diff.max() <= gap and (diff > 0).sum() <= max(1, p.numel() * codes_off)
            absmax = ["exp_avg_absmax", "exp_avg_sq_absmax"]
            assert rel_diff([s[k] for k in absmax], [r[k] for k in absmax]) <= absmax_tol
        assert s["step"].item() == r["step"].item()


def test_bad_hyperparameters_refused_as_in_the_pure_optimizer():
    p = [torch.zeros(3, requires_grad=True)]
    with pytest.raises(ValueError, match="betas\\[1\\]: 1.0"):
        FusedAdamW(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="lr: -1"):
        FusedAdam(p, lr=-1.0)
    with pytest.raises(ValueError, match="nesterov"):
        FusedSGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="min_8bit_size"):
        FusedAdamW8bit(p, min_8bit_size=-1)
    with pytest.raises(TypeError):  # no amsgrad in 8 bits, as in the pure optimizer
        FusedAdamW8bit(p, amsgrad=True)


# ------------------------------------------------------------- the C++ path, exactly

CPP_SHAPES = [(1,), (37,), (12, 25), (1025,), (3, 100_000)]  # the last: many pieces, threads


def run_cpp(build, dtype=torch.float32, steps=STEPS, shapes=CPP_SHAPES, scale=1.0):
    """As :func:`run` on ``shapes``; tensor 2 skips steps 0 and 3."""
    gen = torch.Generator().manual_seed(0)
    params = [(torch.randn(s, generator=gen) * scale).to(dtype) for s in shapes]
    opt = build(params)
    for t in range(steps):
        for i, p in enumerate(params):
            g = (torch.randn(p.shape, generator=gen) * 10.0 ** (i - 3)).to(dtype)
            p.grad = None if i == 2 and t % 3 == 0 else g
        opt.step()
    return params, opt


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """Results must not depend on how the pieces fall to threads (dynamic schedule)."""
    torch.set_num_threads(request.param)  # one_thread restores the count afterwards
    return request.param


@pytest.mark.parametrize("option", sorted(SGD_OPTIONS))
def test_cpp_sgd_is_the_pure_path_bit_for_bit(option, cpu_extension, threads, launches):
    hyper = SGD_OPTIONS[option]
    ours, opt = run_cpp(lambda ps: FusedSGD(ps, **hyper))
    theirs, ref = run_cpp(lambda ps: SGD(ps, **hyper))
    assert sum(launches) == sum(STEPS * p.numel() for p in ours) - 2 * ours[2].numel()
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    for p, q in zip(ours, theirs, strict=True):
        if "momentum_buffer" in ref.state[q]:
            assert torch.equal(opt.state[p]["momentum_buffer"], ref.state[q]["momentum_buffer"])


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_cpp_adamw_moments_bit_for_bit_params_within_an_ulp(
    option, cpu_extension, threads, launches
):
    """AdamW's moments do not depend on p: bit for bit. p differs by the square root:
    torch's CPU sqrt (MKL's vector sqrt) is not correctly rounded (about 1 value in 5 is
    1 ulp off IEEE's), the kernel's is; so p within 1e-6 of its largest value, as the
    Triton path."""
    hyper = OPTIONS[option]
    ours, opt = run_cpp(lambda ps: FusedAdamW(ps, **hyper))
    theirs, ref = run_cpp(lambda ps: AdamW(ps, **hyper))
    assert sum(launches) == sum(STEPS * p.numel() for p in ours) - 2 * ours[2].numel()
    assert rel_diff(ours, theirs) <= 1e-6
    for p, q in zip(ours, theirs, strict=True):
        assert opt.state[p].keys() == ref.state[q].keys()
        for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if k in ref.state[q]:
                assert torch.equal(opt.state[p][k], ref.state[q][k]), k


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("family", sorted(PAIRS_8BIT))
def test_cpp_8bit_is_the_pure_path_bit_for_bit(family, dtype, cpu_extension, threads, launches):
    """Params, codes and absmax equal to the pure 8-bit path's: tail blocks (300, 513,
    1025 values), tensors below min_8bit_size (float32 moments, 1 and 37 values: the
    32-bit kernel with sqrt as 1 / rsqrt, as the pure path), bf16 params."""
    fused, pure = PAIRS_8BIT[family]
    hyper = dict(lr=1e-2, weight_decay=0.1, maximize=family == "adam8bit", min_8bit_size=256)
    shapes = [*CPP_SHAPES, (300,), (2, 256), (513,)]
    ours, opt = run_cpp(lambda ps: fused(ps, **hyper), dtype, shapes=shapes, scale=0.1)
    theirs, ref = run_cpp(lambda ps: pure(ps, **hyper), dtype, shapes=shapes, scale=0.1)
    assert sum(launches) == sum(STEPS * p.numel() for p in ours) - 2 * ours[2].numel()
    assert opt.state[ours[-1]]["exp_avg"].dtype == torch.uint8
    assert opt.state[ours[1]]["exp_avg"].dtype == torch.float32
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    for p, q in zip(ours, theirs, strict=True):
        s, r = opt.state[p], ref.state[q]
        assert s.keys() == r.keys()
        assert all(torch.equal(s[k], r[k]) for k in s), [
            k for k in s if not torch.equal(s[k], r[k])
        ]


def test_cpp_8bit_nan_and_inf_as_the_pure_path(cpu_extension, launches):
    """Gradients with NaN, +-inf, 1e30 and 1e-30 in some blocks: the fused CPU step ends
    with the pure path's params, codes and absmax, NaN where the pure path has NaN (a
    block with a NaN moment has a NaN absmax, torch's amax, and every code is NaN's)."""
    runs = []
    for cls in (FusedAdamW8bit, AdamW8bit):
        gen = torch.Generator().manual_seed(0)
        p = torch.randn(256 * 12 + 77, generator=gen)
        opt = cls([p], lr=1e-2, min_8bit_size=256)
        for t in range(4):
            g = torch.randn(p.shape, generator=gen) * 1e-3
            if t == 1:
                g[[5, p.numel() - 3]], g[300], g[600] = float("nan"), float("inf"), -float("inf")
            if t == 2:
                g[1000], g[1001] = 1e30, 1e-30
            p.grad = g
            opt.step()
        runs.append((p, opt.state[p]))
    (p, ours), (q, theirs) = runs
    assert launches and bool(theirs["exp_avg_absmax"].isnan().any())
    assert torch.equal(p.isnan(), q.isnan()) and torch.equal(p.nan_to_num(), q.nan_to_num())
    for k in ours:
        a, b = ours[k], theirs[k]
        assert torch.equal(a.isnan(), b.isnan()) if a.is_floating_point() else True, k
        assert torch.equal(a.nan_to_num() if a.is_floating_point() else a,
                           b.nan_to_num() if b.is_floating_point() else b), k  # fmt: skip


TORCH_FUSED_CPU = {
    "adam": (FusedAdam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    "adamw": (FusedAdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1, maximize=True)),
    "sgd": (FusedSGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
}


@pytest.mark.parametrize("family", sorted(TORCH_FUSED_CPU))
def test_cpp_matches_torch_fused_on_the_cpu(family, cpu_extension, launches):
    """Against torch's own fused CPU optimizers in float32, 20 steps (no skipped steps:
    torch's fused SGD makes every buffer on its first step): within 1e-5 relative (torch
    evaluates the update in another order). bf16 is held against a float32 run instead
    (test_kernel_half_params_round_once, test_sgd_kernel_bf16_and_grads_untouched):
    torch's fused bf16 SGD rounds otherwise, and 20 steps apart a value near 0 differs
    by more than any common tolerance."""
    ours_cls, torch_cls, hyper = TORCH_FUSED_CPU[family]
    ours, _ = run(lambda ps: ours_cls(ps, **hyper), steps=20, skip=False)
    theirs, _ = run(lambda ps: torch_cls(ps, fused=True, **hyper), steps=20, skip=False)
    assert launches
    assert rel_diff(ours, theirs) <= 1e-5


def test_without_the_extension_one_warning_and_the_pure_path(tmp_path):
    """OPTBENCH_NO_CPP=1 in a fresh process: one warning line, and the fused optimizer's
    result is the pure path's bit for bit."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from suite.optim.kernels.adamw import FusedAdamW\n"
        "from suite.optim.adam import AdamW\n"
        "ps = [torch.ones(5000), torch.ones(5000)]\n"
        "for cls, p in zip((FusedAdamW, AdamW), ps):\n"
        "    opt = cls([p], lr=0.1)\n"
        "    for i in range(3):\n"
        "        p.grad = torch.linspace(-1, 1, 5000) * (i + 1)\n"
        "        opt.step()\n"
        "print(torch.equal(*ps))\n"
    )
    env = {**__import__("os").environ, "OPTBENCH_NO_CPP": "1"}
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    warned = [line for line in proc.stderr.splitlines() if "OPTBENCH_NO_CPP" in line]
    assert len(warned) == 1, proc.stderr


# --------------------------------------------------------------------------- compiled

ADAM_SCALARS = ["decay", "weight_decay", "w1", "beta2", "w2", "eps", "neg_step_size"]
ADAM_SCALARS += ["bias_correction2_sqrt"]
ADAM_FLAGS = dict(DECAY=True, DECOUPLED=True, MAXIMIZE=True)
COMPILED = {  # kernel: (module, function, scalar arguments, constants, block, warps)
    "adam": (
        "_triton_adamw",
        "adam_kernel",
        ADAM_SCALARS,
        dict(**ADAM_FLAGS, AMSGRAD=True),
        1024,
        4,
    ),
    "sgd": (
        "_triton_sgd",
        "sgd_kernel",
        ["neg_lr", "momentum", "w_g", "weight_decay"],
        dict(DECAY=True, MOMENTUM=True, FIRST=False, NESTEROV=True, MAXIMIZE=True),
        1024,
        4,
    ),
    "adam8bit": ("_triton_adam8bit", "adam8bit_kernel", ADAM_SCALARS, ADAM_FLAGS, 256, 2),
}


@pytest.mark.parametrize("masked", [False, True], ids=["full", "tail"])
@pytest.mark.parametrize("kind", sorted(COMPILED))
def test_kernels_compile_for_cuda_without_a_gpu(kind, masked):
    """The compiled (not interpreted) kernels build for sm_90 on this machine: Triton
    ships ptxas, no GPU needed. Full blocks of aligned tensors use vector loads and
    stores; tail blocks are masked. Every sqrt and division is IEEE (.rn)."""
    import importlib
    import re

    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    module, name, scalars, flags, block, warps = COMPILED[kind]
    kernel = getattr(importlib.import_module(f"suite.optim.kernels.{module}"), name)(False)
    tl = triton.language
    constants = dict(P_TY=tl.bfloat16, G_TY=tl.bfloat16, **flags)
    if "S_TY" in kernel.arg_names:
        constants["S_TY"] = tl.float32
    constants.update(MASKED=masked, ALIGNED=True, BLOCK=block)
    signature = dict(ptrs="*i64", numels="*i64", block_tensor="*i32", block_start="*i64")
    signature.update({arg: "fp32" for arg in scalars})
    signature.update({arg: "constexpr" for arg in constants})
    assert set(signature) == set(kernel.arg_names)
    source = ASTSource(
        fn=kernel,
        signature={arg: signature[arg] for arg in kernel.arg_names},
        constexprs={(kernel.arg_names.index(k),): v for k, v in constants.items()},
    )
    from triton.compiler.errors import CompilationError

    try:
        compiled = triton.compile(
            source, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps)
        )
    except CompilationError:  # the kernel's own fault: a failure, never a skip
        raise
    except Exception as err:  # no CUDA backend or ptxas in this Triton build
        pytest.skip(f"Triton cannot compile for CUDA here: {type(err).__name__}: {err}")
    ptx = compiled.asm["ptx"]
    vector = re.findall(r"(?:ld|st)\.global\.v[24]", ptx)
    assert bool(vector) == (not masked)
    assert not re.findall(r"(?:sqrt|div)\.(?:approx|full)", ptx)


# --------------------------------------------------------------------------- on a GPU


TORCH_FUSED = {
    "adam": (FusedAdam, torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1), True),
    "adamw": (FusedAdamW, torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.1, amsgrad=True), True),
    # torch's fused SGD makes every buffer on its first step: no tensor may skip step 0
    "sgd": (FusedSGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True), False),
}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("family", sorted(TORCH_FUSED))
def test_compiled_kernel_matches_torch_fused_on_cuda(family, dtype, launches, monkeypatch):
    """The compiled kernels against torch's own fused optimizers (same dtype, state in
    the param dtype), 20 steps: float32 within 1e-5 relative (both fuse multiply-adds,
    in different places), bf16 within torch's bf16 tolerance."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    ours_cls, torch_cls, hyper, skip = TORCH_FUSED[family]
    kw = dict(dtype=dtype, steps=20, device="cuda", skip=skip)
    ours, opt = run(lambda ps: ours_cls(ps, **hyper), **kw)
    theirs, _ = run(lambda ps: torch_cls(ps, fused=True, **hyper), **kw)
    assert launches and all(p.is_cuda for p in ours)
    assert all(v.is_cuda for v in opt.state[ours[0]].values() if v.dim() > 0)
    if dtype == torch.float32:
        assert rel_diff(ours, theirs) <= 1e-5
    else:
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b, rtol=1.6e-2, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("family", sorted(PAIRS_8BIT))
def test_compiled_8bit_kernel_matches_pure_on_cuda(family, launches, monkeypatch):
    """The compiled 8-bit kernel against the pure 8-bit path on the same GPU, 20 steps.
    Looser than on the CPU: torch's CUDA rsqrt is not correctly rounded, so more moments
    land a code apart, and a code apart feeds the next steps."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    fused, pure = PAIRS_8BIT[family]
    hyper = dict(lr=1e-2, weight_decay=0.1, min_8bit_size=256)
    ours, opt = run8(lambda ps: fused(ps, **hyper), torch.float32, "cuda", steps=20)
    theirs, ref = run8(lambda ps: pure(ps, **hyper), torch.float32, "cuda", steps=20)
    assert launches and opt.state[ours[0]]["exp_avg"].is_cuda
    assert rel_diff(ours, theirs) <= 1e-4
    same_8bit_state(opt, ref, ours, theirs, codes_off=1e-2, gap=2, absmax_tol=1e-3)


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_cpp_8bit_encoder_is_the_pure_encoder(signed, cpu_extension):
    """The fused step's one-lookup encoder (kernels/_cpu_lookup.py) against quant._encode
    and adam8bit.keep_positive_: every midpoint, its neighbours either side (ties go low),
    the map's values, +-0, +-1, subnormals, values below the smallest midpoint and above
    1, NaN of both signs, and an even spread of all float32 bit patterns within [-1, 1]
    (every 4099th), through the AVX2 loop and its scalar tail (odd lengths)."""
    from suite.optim.adam8bit import keep_positive_
    from suite.optim.quant import _encode, _lookup, dynamic_map

    q = dynamic_map(signed)
    mids = (q[:-1] + q[1:]) / 2
    up, down = torch.full_like(mids, 2.0), torch.full_like(mids, -2.0)
    edges = [0.0, -0.0, 1.0, -1.0, 1e-40, -1e-40, 1.2e-38, 1e-30, -1e-30, 2.0, -2.0, 3e-7]
    nans = torch.tensor([float("nan")]).view(torch.int32)
    pattern = torch.arange(-(2**31), 2**31, 4099, dtype=torch.int64).to(torch.int32)
    spread = pattern.view(torch.float32)
    spread = spread[~spread.isnan() & (spread.abs() <= 1)]
    parts = [mids, mids.nextafter(up), mids.nextafter(down), q, torch.tensor(edges)]
    parts += [torch.cat([nans, nans | -(2**31)]).view(torch.float32), spread]
    y = torch.cat(parts).contiguous()
    for n in (y.numel(), 13, 1):
        want = torch.empty(n, dtype=torch.uint8)
        _encode(y[:n], _lookup(q), want)
        assert torch.equal(cpu.encode(y[:n], q), want)
        keep_positive_(want, y[:n])
        assert torch.equal(cpu.encode(y[:n], q, keep_positive=True), want)
    finite = y[~y.isnan()]
    assert torch.equal(cpu.encode(finite, q).long(), torch.bucketize(finite, mids))


def test_cpp_8bit_encoder_refuses_a_map_it_cannot_encode(cpu_extension):
    """A map with two midpoints in one bucket: one clear error, not wrong codes."""
    q = torch.linspace(-1, 1, 256)
    q[128:131] = torch.tensor([0.5, 0.5001, 0.5002])
    with pytest.raises(ValueError, match="at most one midpoint per bucket"):
        cpu.encode(torch.zeros(8), q.sort().values)
