"""The in-house 32-bit optimizers behave as torch optimizers do: torch's state names, an
exact state_dict round trip, params without a gradient left alone, and bad
hyperparameters refused up front with a message that names the value."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

from suite.optim.adam import Adam, AdamW
from suite.optim.registry import REGISTRY
from suite.optim.sgd import SGD

INHOUSE_32 = [s for s in REGISTRY.values() if s.impl == "inhouse" and s.state_bits == 32]
TORCH_TWIN = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
SHAPES = [(5, 3), (17,), (2, 3, 4)]

# Per family: options that change which state exists.
STATE_OPTIONS = {
    "sgd": [
        dict(lr=0.1),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    ],
    "adam": [dict(lr=1e-2), dict(lr=1e-2, amsgrad=True, weight_decay=0.1)],
}
STATE_OPTIONS["adamw"] = STATE_OPTIONS["adam"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second thread only adds scheduler waits on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def entries_with_options():
    for spec in INHOUSE_32:
        for i, options in enumerate(STATE_OPTIONS[spec.family]):
            yield pytest.param(spec, options, id=f"{spec.name}-{i}")


def make_params(seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen) for s in SHAPES]


def set_grads(params: list[torch.Tensor], gen: torch.Generator) -> None:
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)


@pytest.mark.parametrize("spec, options", entries_with_options())
def test_state_names_types_and_shapes_equal_torch(spec, options):
    ours, theirs = make_params(), make_params()
    opt = spec.build(ours, **options)
    ref = TORCH_TWIN[spec.family](theirs, **options)
    gen = torch.Generator().manual_seed(1)
    for _ in range(2):
        set_grads(ours, gen)
        for p, q in zip(ours, theirs, strict=True):
            q.grad = p.grad.clone()
        opt.step()
        ref.step()
    ours_state, theirs_state = opt.state_dict()["state"], ref.state_dict()["state"]
    assert ours_state.keys() == theirs_state.keys()
    for k in ours_state:
        assert ours_state[k].keys() == theirs_state[k].keys()
        for name, value in ours_state[k].items():
            other = theirs_state[k][name]
            assert (value.dtype, value.shape, value.device) == (
                other.dtype,
                other.shape,
                other.device,
            ), name


@pytest.mark.parametrize("through_bytes", [False, True], ids=["in_memory", "torch_save"])
@pytest.mark.parametrize("spec, options", entries_with_options())
def test_state_dict_round_trip_resumes_bit_identically(spec, options, through_bytes):
    # Reference: 6 steps without stopping.
    params = make_params()
    opt = spec.build(params, **options)
    gen = torch.Generator().manual_seed(2)
    grads = [[torch.randn(s, generator=gen) for s in SHAPES] for _ in range(6)]

    def steps(opt, params, grads_at):
        for gs in grads_at:
            for p, g in zip(params, gs, strict=True):
                p.grad = g.clone()
            opt.step()

    steps(opt, params, grads[:3])
    saved_params = [p.detach().clone() for p in params]
    saved = opt.state_dict()
    if through_bytes:
        buf = io.BytesIO()
        torch.save(saved, buf)
        buf.seek(0)
        saved = torch.load(buf)
    else:
        saved = copy.deepcopy(saved)
    steps(opt, params, grads[3:])

    # Resume: new params from the checkpoint, a fresh optimizer, load, continue.
    resumed_params = [p.clone() for p in saved_params]
    resumed = spec.build(resumed_params, **options)
    resumed.load_state_dict(saved)
    steps(resumed, resumed_params, grads[3:])

    for p, q in zip(params, resumed_params, strict=True):
        assert torch.equal(p, q)
    a, b = opt.state_dict(), resumed.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for k in a["state"]:
        for name, value in a["state"][k].items():
            assert torch.equal(value, b["state"][k][name]), name
            assert value.dtype == b["state"][k][name].dtype


@pytest.mark.parametrize("spec", INHOUSE_32, ids=lambda s: s.name)
def test_params_without_grad_are_skipped(spec):
    params = make_params()
    hyper = dict(lr=0.1, weight_decay=0.1)
    if spec.family == "sgd":
        hyper["momentum"] = 0.9
    opt = spec.build(params, **hyper)
    frozen = params[1].clone()
    params[0].grad = torch.ones_like(params[0])
    params[2].grad = torch.ones_like(params[2])
    opt.step()
    opt.step()
    assert torch.equal(params[1], frozen)  # no update, not even weight decay
    assert len(opt.state[params[1]]) == 0
    assert len(opt.state[params[0]]) > 0
    if spec.family != "sgd":
        assert opt.state[params[0]]["step"].item() == 2


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW], ids=lambda c: c.__name__)
def test_sparse_gradient_refused(cls):
    p = torch.zeros(4, 3)
    p.grad = torch.sparse_coo_tensor([[0, 2]], torch.ones(2, 3), (4, 3), check_invariants=True)
    opt = cls([p], lr=0.1)
    with pytest.raises(ValueError, match="sparse"):
        opt.step()


NAN, INF = math.nan, math.inf
INVALID = [
    # (class, keyword arguments, text the message must contain)
    (SGD, dict(lr=-1.0), "invalid lr: -1.0"),
    (SGD, dict(lr=NAN), "invalid lr: nan"),
    (SGD, dict(lr=INF), "invalid lr: inf"),
    (SGD, dict(lr=torch.tensor(-0.5)), "invalid lr: -0.5"),
    (SGD, dict(lr=torch.tensor(NAN)), "invalid lr: nan"),
    (SGD, dict(lr=torch.tensor([0.1, 0.2])), "invalid lr: a tensor with 2 elements"),
    (SGD, dict(lr="fast"), "invalid lr: 'fast'"),
    (SGD, dict(lr=0.1, momentum=-0.9), "invalid momentum: -0.9"),
    (SGD, dict(lr=0.1, momentum=NAN), "invalid momentum: nan"),
    (SGD, dict(lr=0.1, momentum=0.9, dampening=1.5), "invalid dampening: 1.5"),
    (SGD, dict(lr=0.1, weight_decay=-1e-4), "invalid weight_decay: -0.0001"),
    (SGD, dict(lr=0.1, nesterov=True), "momentum=0.0"),
    (SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
    (Adam, dict(lr=-1.0), "invalid lr: -1.0"),
    (Adam, dict(lr=NAN), "invalid lr: nan"),
    (Adam, dict(lr=torch.tensor(-1e-3)), "invalid lr: -0.001"),
    (Adam, dict(eps=-1e-8), "invalid eps: -1e-08"),
    (Adam, dict(eps=NAN), "invalid eps: nan"),
    (Adam, dict(betas=(1.0, 0.999)), "invalid betas[0]: 1.0"),
    (Adam, dict(betas=(-0.1, 0.999)), "invalid betas[0]: -0.1"),
    (Adam, dict(betas=(0.9, NAN)), "invalid betas[1]: nan"),
    (Adam, dict(betas=(0.9, torch.tensor(1.5))), "invalid betas[1]: 1.5"),
    (Adam, dict(betas=(0.9,)), "invalid betas"),
    (Adam, dict(weight_decay=-0.1), "invalid weight_decay: -0.1"),
    (AdamW, dict(lr=INF), "invalid lr: inf"),
    (AdamW, dict(weight_decay=NAN), "invalid weight_decay: nan"),
    (AdamW, dict(betas=(0.9, 1.0)), "invalid betas[1]: 1.0"),
]


@pytest.mark.parametrize(
    "cls, kwargs, message", INVALID, ids=[f"{c.__name__}-{m}" for c, _, m in INVALID]
)
def test_invalid_hyperparameters_raise_naming_the_value(cls, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        cls([torch.zeros(2)], **kwargs)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW], ids=lambda c: c.__name__)
def test_invalid_value_in_a_param_group_is_refused_too(cls):
    a, b = torch.zeros(2), torch.zeros(3)
    with pytest.raises(ValueError, match="invalid lr: -0.1"):
        cls([{"params": [a]}, {"params": [b], "lr": -0.1}], lr=0.1)
    opt = cls([a], lr=0.1)
    with pytest.raises(ValueError, match="invalid weight_decay: -1.0"):
        opt.add_param_group({"params": [b], "weight_decay": -1.0})
    assert len(opt.param_groups) == 1  # the refused group was not kept


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW], ids=lambda c: c.__name__)
def test_tensor_lr_steps_like_the_float(cls):
    a, b = torch.ones(3), torch.ones(3)
    opt_a, opt_b = cls([a], lr=0.1), cls([b], lr=torch.tensor(0.1))
    for _ in range(3):
        a.grad, b.grad = torch.full((3,), 0.5), torch.full((3,), 0.5)
        opt_a.step()
        opt_b.step()
    assert torch.equal(a, b)


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("options", [dict(momentum=0.9, nesterov=True), dict(maximize=True)])
def test_sgd_never_writes_to_the_gradient(foreach, options):
    # torch.optim.SGD(foreach=True, nesterov=True) adds the buffer into p.grad in place.
    p = torch.zeros(3)
    p.grad = torch.ones(3)
    opt = SGD([p], lr=0.1, foreach=foreach, **options)
    opt.step()
    opt.step()
    assert torch.equal(p.grad, torch.ones(3))


def test_adamw_defaults_and_closure():
    p = torch.ones(2)
    opt = AdamW([p])
    assert (
        opt.defaults["weight_decay"]
        == torch.optim.AdamW([torch.ones(1)]).defaults["weight_decay"]
        == 1e-2
    )
    assert isinstance(opt, Adam) and AdamW.decoupled and not Adam.decoupled

    def closure():
        p.grad = torch.ones(2)
        return torch.tensor(3.0)

    assert opt.step(closure).item() == 3.0
    assert opt.state[p]["step"].dtype == torch.float32
