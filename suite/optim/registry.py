"""Every optimizer the suite can run, read from the ``optimizer`` config group.

One source of truth: ``conf/optimizer/<name>.yaml`` (or the same group in a folder
added with ``hydra.searchpath``) says everything an entry is. Its ``_entry_`` block::

    _entry_:
      impl: torch          # who wrote it: inhouse, torch, bnb, schedulefree, torchao, ...
      family: adamw        # free text: sgd, adam, adamw, nadam, lion, muon, custom, ...
      state_bits: 32       # the precision it claims; a test measures it (uint8 state for 8)
      fixed: [foreach]     # arguments that make it what its name says (may not be overridden)
      requires: cuda       # optional: the device it needs (refused up front elsewhere)
    _target_: torch.optim.AdamW
    _partial_: true
    foreach: true          # a fixed argument's value lives with the other arguments
    lr: 0.001 ...

A file without ``_entry_`` (a user's own) is still an entry: its impl is read from
the target's module (``torch.optim.NAdam`` -> ``torch``) and its family is ``custom``.

:data:`REGISTRY` lists the repository's ``conf/optimizer`` through Hydra's config
repository, lazily (the first lookup reads the group); :func:`load_registry` takes
extra search-path folders; :func:`spec_from_config` makes the spec of an already
composed config (what ``suite.run`` uses, so a searchpath entry needs nothing else).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUP = "optimizer"
# Top-level modules of the libraries the suite knows by a short impl name.
IMPL_OF_MODULE = {"suite": "inhouse", "torch": "torch", "bitsandbytes": "bnb"}
# Per-group keys the suite adds for optimizers that split a task's groups (suite.optim.roles).
ANNOTATIONS = ("param_roles",)


@dataclass(frozen=True)
class OptimSpec:
    name: str
    impl: str  # inhouse | torch | bnb | schedulefree | torchao | <top-level module>
    family: str  # free text: sgd, adam, adamw, nadam, lion, muon, custom, ...
    state_bits: int | None  # the precision the entry claims (None: no claim); measured per run
    target: str  # "module.Class" as the config's _target_ says, imported lazily
    fixed: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    requires: str | None = None  # a device type the entry needs ("cuda"), else None
    hyper: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def cls(self) -> type[torch.optim.Optimizer]:
        return import_class(self.target)

    def build(self, params: Iterable, **hyper: Any) -> torch.optim.Optimizer:
        """The entry's class on ``params`` with its fixed arguments and ``hyper``: the
        run's path (:func:`builder`) with the partial made here instead of by Hydra."""
        clash = set(hyper) & set(self.fixed)
        if clash:
            raise ValueError(f"optimizer {self.name!r} fixes {sorted(clash)}; do not pass them")
        make = functools.partial(self.cls(), **self.fixed, **hyper)
        return builder(make, self.target)(params)


def import_class(target: str, what: str = "optimizer._target_") -> type:
    """The class ``target`` names; a one-line error unless it is a torch Optimizer."""
    module, _, attr = str(target).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise ValueError(f"invalid {what} {target!r}: cannot import it ({e})") from None
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ValueError(f"invalid {what} {target!r}: not a torch.optim.Optimizer subclass")
    return cls


def builder(make: Callable, target: str) -> Callable[[list], torch.optim.Optimizer]:
    """``make`` (Hydra's partial of the class) taking the task's annotated groups: the
    suite's annotations reach only a class that reads them (``takes_param_roles``)."""
    cls = import_class(target)
    return lambda groups: make(plain_groups(groups, cls))


def plain_groups(params: Iterable, cls: type) -> list:
    """``params`` without the suite's per-group annotations, unless ``cls`` reads them
    (``cls.takes_param_roles``): every other optimizer sees the task's groups as they are."""
    params = list(params)
    if getattr(cls, "takes_param_roles", False):
        return params
    return [
        {k: v for k, v in g.items() if k not in ANNOTATIONS} if isinstance(g, dict) else g
        for g in params
    ]


def impl_of(target: str) -> str:
    root = target.split(".", 1)[0]
    return IMPL_OF_MODULE.get(root, root)


def spec_from_config(name: str, cfg: Mapping) -> OptimSpec:
    """The spec of entry ``name`` from its (composed) config: ``_entry_`` plus ``_target_``."""
    entry = dict(cfg.get("_entry_") or {})
    target = str(cfg["_target_"])
    unknown = set(entry) - {"impl", "family", "state_bits", "fixed", "requires"}
    if unknown:
        raise ValueError(
            f"optimizer {name!r}: unknown _entry_ keys {sorted(unknown)}; "
            "valid: impl, family, state_bits, fixed, requires"
        )
    impl = entry.get("impl") or "auto"
    fixed = {key: cfg[key] for key in entry.get("fixed") or () if key in cfg}
    hyper = {k: v for k, v in cfg.items() if not (str(k).startswith("_") and str(k).endswith("_"))}
    for key in fixed:
        hyper.pop(key)
    return OptimSpec(
        name=name,
        impl=impl_of(target) if impl == "auto" else str(impl),
        family=str(entry.get("family") or "custom"),
        state_bits=entry.get("state_bits"),
        target=target,
        fixed=MappingProxyType(fixed),
        requires=entry.get("requires"),
        hyper=MappingProxyType(hyper),
    )


def load_group(search_path: Iterable[str | Path] = ()) -> dict[str, dict]:
    """Every option of the ``optimizer`` group as Hydra sees it (the repository's conf
    plus ``search_path`` folders, later ones overriding), name -> plain config dict."""
    from hydra._internal.config_repository import ConfigRepository
    from hydra._internal.utils import create_config_search_path
    from hydra.core.object_type import ObjectType
    from omegaconf import OmegaConf

    csp = create_config_search_path(str(CONF))
    for folder in search_path:
        folder = str(folder)
        csp.prepend("optbench-user", folder if "://" in folder else f"file://{folder}")
    repo = ConfigRepository(csp)
    group = {}
    for name in repo.get_group_options(GROUP, ObjectType.CONFIG):
        loaded = repo.load_config(f"{GROUP}/{name}")
        group[name] = OmegaConf.to_container(loaded.config, resolve=False)
    return group


def load_registry(search_path: Iterable[str | Path] = ()) -> dict[str, OptimSpec]:
    """name -> spec for every entry of the group that names a ``_target_`` (``custom``
    leaves it to the command line, so it is an entry of its own, not listed)."""
    return {
        name: spec_from_config(name, cfg)
        for name, cfg in load_group(search_path).items()
        if cfg.get("_target_") not in (None, "???")
    }


class _Registry(Mapping):
    """The repository's entries, read from ``conf/optimizer`` on first use."""

    def __init__(self) -> None:
        self._specs: dict[str, OptimSpec] | None = None

    def _load(self) -> dict[str, OptimSpec]:
        if self._specs is None:
            self._specs = load_registry()
        return self._specs

    def __getitem__(self, name: str) -> OptimSpec:
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


REGISTRY: Mapping[str, OptimSpec] = _Registry()


def get(name: str) -> OptimSpec:
    """The spec called ``name``; an unknown name is a one-line error listing the valid ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown optimizer {name!r}; valid: {', '.join(sorted(REGISTRY))}"
        ) from None
