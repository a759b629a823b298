"""Registry entries as the config group says them: every entry builds and steps (through
the real entry point), claims the state precision it measurably has; overridden entries
are renamed or refused; Muon's split; Schedule-Free's train/eval; closures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from suite import record
from suite.optim.entry import (
    check_device,
    describe,
    eval_mode,
    identity,
    needs_closure,
    train_mode,
)
from suite.optim.registry import REGISTRY, load_registry
from suite.optim.roles import param_roles, with_roles
from suite.tasks.toy import ToyTask
from suite.train import LoopConfig, train
from tests.conftest import run_suite

# torchao compiles its step with torch.compile: ~30 s per entry on this CPU, so slow.
COMPILED = {n for n, s in REGISTRY.items() if s.impl == "torchao"}
RUNNABLE_HERE = sorted(
    n for n, s in REGISTRY.items() if s.requires in (None, "cpu") and n not in COMPILED
)
# The in-house and torch/bnb SGD/Adam/AdamW entries have their own tests (test_optim_*.py);
# the default set sweeps the others, the slow set all of them.
OWN_TESTS = {n for n, s in REGISTRY.items() if s.family in ("sgd", "adam", "adamw")}


def _summaries(root):
    return {s["optimizer"]: s for s in map(record.read_summary, sorted(root.glob("*/")))}


def _sweep(names, tmp_path):
    """One multirun of the real entry point over ``names`` on a toy task wide enough
    (a 64x64 weight) for 8-bit state to apply."""
    run_suite(
        "task=toy",
        "task.dim=64",
        "task.num_classes=64",
        f"optimizer={','.join(names)}",
        "steps=4",
        "eval_every=0",
        "logger=none",
        "progress=none",
        "threads=1",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.sweep.subdir=${hydra:runtime.choices.optimizer}",
        multirun=True,
        timeout=600,
    )
    return _summaries(tmp_path)


def _check_sweep(names, found):
    assert sorted(found) == sorted(names)
    for name in names:
        s, spec = found[name], REGISTRY[name]
        assert s["status"] == "ok" and s["steps"] == 4, (name, s["error"])
        assert s["impl"] == spec.impl and s["family"] == spec.family
        assert s["optimizer_class"].rsplit(".", 1)[1] == spec.target.rsplit(".", 1)[1]
        # the precision it claims is the one its state tensors have (measured)
        assert s["state_bits"] == spec.state_bits, name
        assert s["optimizer_state_bytes"] > 0


def test_every_new_entry_builds_and_steps_through_the_entry_point(tmp_path):
    names = [n for n in RUNNABLE_HERE if n not in OWN_TESTS]
    _check_sweep(names, _sweep(names, tmp_path))


@pytest.mark.slow
def test_every_entry_builds_and_steps_through_the_entry_point(tmp_path):
    _check_sweep(RUNNABLE_HERE, _sweep(RUNNABLE_HERE, tmp_path))


@pytest.mark.slow
def test_torchao_entries_build_and_step_through_the_entry_point(tmp_path):
    _check_sweep(sorted(COMPILED), _sweep(sorted(COMPILED), tmp_path))


@pytest.mark.parametrize("name", RUNNABLE_HERE)
def test_every_entry_holds_the_state_precision_it_claims(name):
    """Measured from the state tensors after a step: an entry called 8-bit holds uint8
    state (timm's bnbadamw8bit builds 32-bit state by mistake; we must never), and no
    32-bit entry holds any."""
    spec = REGISTRY[name]
    big = nn.Parameter(torch.randn(64, 64))  # 4096 values: the 8-bit threshold
    small = nn.Parameter(torch.randn(10))
    opt = spec.build([big, small], lr=1e-3, **({"momentum": 0.9} if spec.family == "sgd" else {}))
    train_mode(opt)
    big.grad, small.grad = torch.randn_like(big), torch.randn_like(small)
    opt.step()
    measured = describe(opt)
    assert measured["state_bits"] == spec.state_bits, (name, measured)
    assert ("torch.uint8" in measured["state_dtypes"]) == (spec.state_bits <= 8), measured
    assert measured["optimizer_class"].endswith("." + spec.target.rsplit(".", 1)[1])


def test_cuda_only_entry_is_refused_on_cpu_in_one_line():
    spec = identity("bnb_paged_adamw8bit", _cfg("bnb_paged_adamw8bit"))
    with pytest.raises(ValueError, match="needs a cuda device and this run is on cpu") as e:
        check_device(spec, torch.device("cpu"))
    assert "\n" not in str(e.value)
    check_device(spec, torch.device("cuda"))  # no CUDA needed to decide: only the type
    # built directly on CPU tensors it refuses too (bitsandbytes would silently run unpaged)
    with pytest.raises(ValueError, match="needs CUDA"):
        REGISTRY["bnb_paged_adamw8bit"].build([nn.Parameter(torch.zeros(4))])


def _cfg(name):
    from omegaconf import OmegaConf

    from tests.test_config import composed

    return OmegaConf.to_container(composed(f"optimizer={name}").optimizer, resolve=True)


@pytest.mark.parametrize(
    "name, overrides, recorded",
    [
        ("adamw", [], "adamw"),
        ("adamw", ["optimizer.lr=0.1"], "adamw"),  # a hyperparameter: same entry, own hparams
        ("adamw", ["optimizer._target_=torch.optim.NAdam"], "custom:torch.optim.NAdam"),
        ("torch_adamw", ["optimizer._target_=bitsandbytes.optim.Lion8bit"],
         "custom:bitsandbytes.optim.Lion8bit"),
        ("custom", ["optimizer._target_=torch.optim.Adafactor"], "custom:torch.optim.Adafactor"),
    ],
)  # fmt: skip
def test_identity_is_truthful(name, overrides, recorded):
    cfg = _cfg(name)
    for o in overrides:
        key, value = o.split("=")
        cfg[key.removeprefix("optimizer.")] = value
    spec = identity(name, cfg, overrides)
    assert spec.name == recorded
    if recorded.startswith("custom:"):
        assert spec.family == "custom" and spec.state_bits is None
        assert spec.impl == {"torch": "torch", "bitsandbytes": "bnb"}[spec.target.split(".")[0]]


@pytest.mark.parametrize(
    "name, override, message",
    [
        ("torch_adamw", "optimizer.foreach=false", "fixes foreach"),
        ("torch_adamw_fused", "~optimizer.fused", "fixes fused"),
        ("bnb_lion", "+optimizer.optim_bits=8", "fixes optim_bits"),
        ("bnb_adamw8bit", "+optimizer.optim_bits=32", "fixes optim_bits"),  # bnb ignores it
        ("adamw", "optimizer._entry_.family=sgd", "_entry_ says what entry"),
        ("custom", "optimizer.lr=0.1", "needs optimizer._target_"),
        ("custom", "optimizer._target_=torch.nn.Linear", "not a torch.optim.Optimizer"),
        ("custom", "optimizer._target_=nowhere.Opt", "cannot import"),
    ],
)
def test_identity_refuses_what_would_be_untruthful(name, override, message):
    cfg = _cfg(name)
    key, _, value = override.lstrip("~+").partition("=")
    if key == "_target_" or key.startswith("optimizer._target_"):
        cfg["_target_"] = value
    with pytest.raises(ValueError, match=message):
        identity(name, cfg, [override])


def test_a_searchpath_folder_adds_entries(tmp_path):
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "nadam.yaml").write_text(
        "_target_: torch.optim.NAdam\n_partial_: true\nlr: 0.002\n"
    )
    specs = load_registry([tmp_path])
    assert specs["nadam"].impl == "torch" and specs["nadam"].family == "custom"
    assert specs["nadam"].cls() is torch.optim.NAdam and "adamw" in specs


class TinyLM(nn.Module):
    """Embedding -> two hidden Linear layers with a norm -> head: every role once."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(11, 8)
        self.up, self.down = nn.Linear(8, 16), nn.Linear(16, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 11)

    def forward(self, x):
        return self.head(self.norm(self.down(torch.relu(self.up(self.embed(x))))))


def test_muon_gets_the_hidden_2d_weights_and_adamw_the_rest():
    torch.manual_seed(0)
    model = TinyLM()
    roles = {n: param_roles(model)[id(p)] for n, p in model.named_parameters()}
    assert roles["embed.weight"] == "embedding" and roles["head.weight"] == "head"
    assert roles["up.weight"] == roles["down.weight"] == "hidden"
    groups = [{"params": list(model.parameters()), "weight_decay": 0.0}]
    opt = REGISTRY["torch_muon"].build(with_roles(model, groups), lr=0.02, adamw_lr=1e-3)
    ids = {id(p): n for n, p in model.named_parameters()}
    muon = {ids[id(p)] for g in opt.muon.param_groups for p in g["params"]}
    adamw = {ids[id(p)] for g in opt.adamw.param_groups for p in g["params"]}
    assert muon == {"up.weight", "down.weight"}
    assert adamw == set(ids.values()) - muon
    assert all("param_roles" not in g for g in opt.param_groups)

    # one scheduler scales both parts from their own base lr; both step; state round-trips
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model(torch.arange(11)).square().mean().backward()
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.01, 5e-4]
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert {"momentum_buffer"} == set(opt.state[model.up.weight])
    assert {"exp_avg", "exp_avg_sq", "step"} == set(opt.state[model.embed.weight])
    saved = opt.state_dict()
    again = REGISTRY["torch_muon"].build(with_roles(model, groups), lr=0.02, adamw_lr=1e-3)
    again.load_state_dict(saved)
    assert torch.equal(
        again.state[model.up.weight]["momentum_buffer"],
        opt.state[model.up.weight]["momentum_buffer"],
    )
    assert again.param_groups[0] is again.muon.param_groups[0]


def test_schedule_free_evaluates_its_averaged_weights_and_trains_at_y(tmp_path):
    import schedulefree

    built, modes = [], []

    class Watched(ToyTask):
        def evaluate(self, model):
            modes.append(built[0].param_groups[0]["train_mode"])
            return super().evaluate(model)

    def make(groups):
        built.append(REGISTRY["schedulefree_adamw"].build(groups, lr=1e-2))
        return built[0]

    train(Watched(), make, LoopConfig(steps=6, eval_every=2, log_every=2), tmp_path)
    assert modes == [False, False, False]  # every evaluation at x (eval mode)
    assert built[0].param_groups[0]["train_mode"] is True  # training resumed at y
    assert isinstance(built[0], schedulefree.AdamWScheduleFree)

    # eval() really moves the parameters to x and train() back to y
    p = nn.Parameter(torch.ones(3))
    opt = schedulefree.AdamWScheduleFree([p], lr=0.1)
    train_mode(opt)
    for _ in range(3):
        p.grad = torch.tensor([1.0, -1.0, 0.5])
        opt.step()
    y = p.detach().clone()
    with eval_mode(opt):
        assert not torch.equal(p, y)
    assert torch.equal(p, y)


class ClosureOnly(torch.optim.SGD):
    """An optimizer whose step needs a closure (as LBFGS's does)."""

    calls = 0

    def step(self, closure):  # no default: the loop must pass one
        ClosureOnly.calls += 1
        loss = closure()
        assert torch.is_tensor(loss) and all(
            p.grad is not None for p in self.param_groups[0]["params"]
        )
        return super().step()


def test_an_optimizer_that_needs_a_closure_gets_one(tmp_path):
    assert needs_closure(ClosureOnly([nn.Parameter(torch.zeros(1))], lr=0.1))
    assert not needs_closure(torch.optim.AdamW([nn.Parameter(torch.zeros(1))]))
    ClosureOnly.calls = 0
    out = train(ToyTask(), lambda g: ClosureOnly(g, lr=0.1), LoopConfig(steps=5), tmp_path)
    assert out["status"] == "ok" and ClosureOnly.calls == 5


def test_describe_measures_class_and_precision():
    big, small = nn.Parameter(torch.randn(64, 64)), nn.Parameter(torch.randn(10))
    opt = REGISTRY["adamw8bit"].build([big, small], lr=1e-3)
    assert describe(opt)["state_bits"] is None  # nothing measured before a step
    big.grad, small.grad = torch.randn_like(big), torch.randn_like(small)
    opt.step()
    d = describe(opt)
    assert d["optimizer_class"] == "suite.optim.adam8bit.AdamW8bit" and d["state_bits"] == 8
    assert d["state_dtypes"]["torch.uint8"] == 2 * big.numel()


@pytest.mark.parametrize("bits, block", [(8, 256), (4, 128)])
def test_state_of_tensor_subclasses_is_measured_through_its_inner_tensors(bits, block):
    """torchao keeps low-bit state as tensor subclasses (codes + scales [+ map]); the bytes
    and the precision come from the inner tensors (its step needs torch.compile: slow)."""
    from torchao.optim import subclass_4bit, subclass_8bit

    from suite.optim.state import state_bytes

    cls = {8: subclass_8bit.OptimState8bit, 4: subclass_4bit.OptimState4bit}[bits]
    p = nn.Parameter(torch.zeros(64, 64))
    opt = torch.optim.SGD([p], lr=0.1)  # any optimizer: only its state is measured here
    opt.state[p]["exp_avg_sq"] = cls.zeros(p.shape, signed=False, block_size=block)
    inner = [getattr(opt.state[p]["exp_avg_sq"], n) for n in ("codes", "scale")]
    assert state_bytes(opt) >= sum(t.numel() * t.element_size() for t in inner)
    assert p.numel() * bits // 8 <= state_bytes(opt) < p.numel() * 4  # well under fp32
    assert describe(opt)["state_bits"] == bits


def test_state_kept_in_lists_is_measured():
    """SOAP (the config-only po_soap entry, pytorch-optimizer) keeps its preconditioners as
    lists of matrices per parameter (GG, Q: one d x d per dimension d); they are counted."""
    from suite.optim.state import state_bytes

    w, b = nn.Parameter(torch.randn(32, 64)), nn.Parameter(torch.zeros(32))
    opt = REGISTRY["po_soap"].build([w, b], lr=1e-3)
    for _ in range(2):  # the preconditioners are made at the first step
        w.grad, b.grad = torch.randn_like(w), torch.randn_like(b)
        opt.step()
    moments = 2 * (w.numel() + b.numel())  # exp_avg, exp_avg_sq
    preconditioners = 2 * (32 * 32 + 64 * 64)  # GG and Q of the weight; a vector keeps none
    assert state_bytes(opt) == 4 * (moments + preconditioners)
