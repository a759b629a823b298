"""Every optimizer the suite can run, in-house and reference, by name.

An :class:`OptimSpec` says what an entry *is* (implementation, family, state
precision) and how to build it: an import string resolved lazily, so the
optional reference libraries (bitsandbytes) are only imported when used, plus
the fixed keyword arguments that make the entry what its name says (for
example ``foreach=False`` for torch's for-loop mode). Hyperparameters come from
the Hydra config (``conf/optimizer/<name>.yaml``), which agrees with this table
one to one (a test checks it).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

IMPLS = ("inhouse", "torch", "bnb")
FAMILIES = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class OptimSpec:
    name: str
    impl: str  # "inhouse" | "torch" | "bnb"
    family: str  # "sgd" | "adam" | "adamw"
    state_bits: int  # 32 or 8: precision of the optimizer state it keeps
    target: str  # "module:Class", imported lazily
    fixed: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        assert self.impl in IMPLS and self.family in FAMILIES and self.state_bits in (8, 32)

    def cls(self) -> type[torch.optim.Optimizer]:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def build(self, params: Iterable, **hyper: Any) -> torch.optim.Optimizer:
        clash = set(hyper) & set(self.fixed)
        if clash:
            raise ValueError(f"optimizer {self.name!r} fixes {sorted(clash)}; do not pass them")
        return self.cls()(params, **self.fixed, **hyper)


def _spec(name, impl, family, bits, target, **fixed) -> OptimSpec:
    return OptimSpec(name, impl, family, bits, target, MappingProxyType(fixed))


_SPECS = [
    # in-house, written from the math (suite/optim/*.py)
    _spec("sgd", "inhouse", "sgd", 32, "suite.optim.sgd:SGD"),
    _spec("adam", "inhouse", "adam", 32, "suite.optim.adam:Adam"),
    _spec("adamw", "inhouse", "adamw", 32, "suite.optim.adam:AdamW"),
    _spec("adamw_forloop", "inhouse", "adamw", 32, "suite.optim.adam:AdamW", foreach=False),
    _spec("adam8bit", "inhouse", "adam", 8, "suite.optim.adam8bit:Adam8bit"),
    _spec("adamw8bit", "inhouse", "adamw", 8, "suite.optim.adam8bit:AdamW8bit"),
    # in-house fused Triton kernels (suite/optim/kernels); the pure path where they cannot run
    _spec("adam_fused", "inhouse", "adam", 32, "suite.optim.kernels.adamw:FusedAdam"),
    _spec("adamw_fused", "inhouse", "adamw", 32, "suite.optim.kernels.adamw:FusedAdamW"),
    _spec("sgd_fused", "inhouse", "sgd", 32, "suite.optim.kernels.sgd:FusedSGD"),
    _spec("adam8bit_fused", "inhouse", "adam", 8, "suite.optim.kernels.adam8bit:FusedAdam8bit"),
    _spec("adamw8bit_fused", "inhouse", "adamw", 8, "suite.optim.kernels.adam8bit:FusedAdamW8bit"),
    # torch.optim, in its three implementations
    _spec("torch_sgd", "torch", "sgd", 32, "torch.optim:SGD", foreach=True),
    _spec("torch_adam", "torch", "adam", 32, "torch.optim:Adam", foreach=True),
    _spec("torch_adamw", "torch", "adamw", 32, "torch.optim:AdamW", foreach=True),
    _spec("torch_adamw_forloop", "torch", "adamw", 32, "torch.optim:AdamW", foreach=False),
    _spec("torch_adamw_fused", "torch", "adamw", 32, "torch.optim:AdamW", fused=True),
    # bitsandbytes 8-bit (block-wise dynamic quantization; runs on CPU since 0.45)
    _spec("bnb_adam8bit", "bnb", "adam", 8, "suite.optim.reference:BnbAdam8bit"),
    _spec("bnb_adamw8bit", "bnb", "adamw", 8, "bitsandbytes.optim:AdamW8bit"),
]

REGISTRY: Mapping[str, OptimSpec] = MappingProxyType({s.name: s for s in _SPECS})


def get(name: str) -> OptimSpec:
    """The spec called ``name``; an unknown name is a one-line error listing the valid ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown optimizer {name!r}; valid: {', '.join(sorted(REGISTRY))}"
        ) from None
