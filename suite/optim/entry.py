"""From a composed ``optimizer`` config to a truthful entry, a builder and a record.

- :func:`identity`: which entry this run is. A named entry stays itself; a command line
  that changes its ``_target_`` makes it ``custom:<module.Class>`` (recorded and reported
  apart, never under the entry's name); one that changes a fixed argument (``foreach``
  of ``torch_adamw``, ``optim_bits`` of ``bnb_adamw8bit``) or ``_entry_`` is refused.
  ``optimizer=custom optimizer._target_=torch.optim.NAdam`` is ``custom:torch.optim.NAdam``.
- :func:`check_hparams`: hyperparameters an optimizer accepts but that cannot train
  (non-finite or past float32, momentum >= 1, eps = 0), refused before anything is built.
- :func:`validate`: the optimizer built on the real model's parameter groups (on the meta
  device, or a real copy where a task's model cannot be built there), before any training.
- :func:`describe`: what the run record states about the optimizer, measured: the class
  built (``module.Class``) and the state precision from the state tensors' dtypes.
- :func:`eval_mode`, :func:`train_mode`, :func:`needs_closure`: the optimizers that need
  more than ``step()`` (Schedule-Free's ``train()``/``eval()``, LBFGS-style closures).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch

from suite.optim.registry import OptimSpec, impl_of, import_class, spec_from_config
from suite.optim.registry import builder as builder  # re-exported: run.py builds through it
from suite.optim.roles import with_roles
from suite.optim.state import inner_tensors

CUSTOM = "custom"


def _overridden(overrides: Sequence[str]) -> dict[str, str]:
    """``optimizer.<key>`` -> the override's text, for every command-line override of the group."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    found = {}
    for o in OverridesParser.create().parse_overrides(list(overrides)):
        key = o.key_or_group
        if key.startswith("optimizer."):
            found[key.removeprefix("optimizer.")] = o.input_line or key
    return found


def identity(name: str, cfg: Mapping, overrides: Sequence[str] = ()) -> OptimSpec:
    """The spec this run records for entry ``name`` with ``cfg`` (the composed, resolved
    optimizer config as a plain dict) after the command line ``overrides``."""
    changed = _overridden(overrides)
    target = cfg.get("_target_")
    if target in (None, "???"):
        raise ValueError(
            f"optimizer={name} needs optimizer._target_=<module.Class> (any torch.optim."
            "Optimizer subclass importable on the path), e.g. optimizer._target_=torch.optim.NAdam"
        )
    import_class(target)
    spec = spec_from_config(name, cfg)
    for key, text in changed.items():
        top = key.split(".", 1)[0]
        if top == "_entry_":
            raise ValueError(
                f"invalid override {text}: _entry_ says what entry {name!r} is; write your own "
                "conf/optimizer/<name>.yaml (README: Benchmark your own optimizer)"
            )
        if top in (cfg.get("_entry_") or {}).get("fixed", ()):
            raise ValueError(
                f"invalid override {text}: entry {name!r} fixes {top} (it is what its name says); "
                f"pick the entry with the {top} you want, or optimizer=custom "
                "optimizer._target_=<module.Class>"
            )
    if name == CUSTOM or "_target_" in changed:
        spec = replace(
            spec,
            name=f"{CUSTOM}:{target}",
            impl=impl_of(target),
            family=CUSTOM,
            state_bits=None,
            fixed={},
            requires=None,
        )
    return spec


def check_device(spec: OptimSpec, device: torch.device) -> None:
    if spec.requires and device.type != spec.requires:
        raise ValueError(
            f"optimizer {spec.name!r} needs a {spec.requires} device and this run is on "
            f"{device.type} (device={device.type})"
        )


def validate(
    make_optimizer: Callable[[list], torch.optim.Optimizer], task: Any, weight_decay: float
) -> None:
    """Build the optimizer on the groups of the task's real model, so bad hyperparameters
    (and optimizers that refuse some parameter shapes) fail before training. The model is
    built on the meta device (no memory, no init cost); a model that cannot be built
    there is built for real (a one-off copy)."""
    on_meta = copy.copy(task)  # a shallow copy: build_model's .to(task.device) goes to meta
    on_meta.device = torch.device("meta")
    try:
        with torch.device("meta"):
            model = on_meta.build_model()
    except (NotImplementedError, RuntimeError, AttributeError):
        model = task.build_model()
    make_optimizer(with_roles(model, task.param_groups(model, weight_decay)))


def state_tensors(optimizer: torch.optim.Optimizer) -> Iterator[torch.Tensor]:
    for per_param in optimizer.state.values():
        for value in per_param.values():
            if torch.is_tensor(value):
                yield value


def describe(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """What the record states about the built optimizer, measured::

    optimizer_class  "module.Class" of the object built
    state_dtypes     {"torch.uint8": bytes, "torch.float32": bytes, ...} over its state
    state_bits       bits per value of the state that holds the most values: for each
                     non-scalar state tensor t, 8 * bytes(codes) / numel(t), where codes is
                     t itself or, for a tensor subclass, its largest inner tensor (a packed
                     4-bit subclass counts 4; its scales and map count in the state bytes,
                     not here); None before any state exists
    """
    dtypes: Counter = Counter()
    bits_by_values: Counter = Counter()
    for t in state_tensors(optimizer):
        inner = inner_tensors(t)
        codes = max(inner, key=lambda x: x.numel())  # a subclass's values; its scales aside
        nbytes = codes.numel() * codes.element_size()
        for x in inner:
            dtypes[str(x.dtype)] += x.numel() * x.element_size()
        if t.numel() > 1:
            bits_by_values[round(8 * nbytes / t.numel())] += t.numel()
    cls = type(optimizer)
    return {
        "optimizer_class": f"{cls.__module__}.{cls.__qualname__}",
        "state_bits": bits_by_values.most_common(1)[0][0] if bits_by_values else None,
        "state_dtypes": dict(dtypes),
    }


def train_mode(optimizer: torch.optim.Optimizer) -> None:
    """Put an optimizer with modes (Schedule-Free) in training mode; others are unchanged."""
    if callable(getattr(optimizer, "train", None)):
        optimizer.train()


@contextlib.contextmanager
def eval_mode(optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Evaluate at the weights the optimizer means to be evaluated (Schedule-Free's averaged
    x, not its gradient point y), then go back to training mode."""
    if not callable(getattr(optimizer, "eval", None)):
        yield
        return
    optimizer.eval()
    try:
        yield
    finally:
        optimizer.train()


def needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``step`` requires a closure (LBFGS: ``step(self, closure)``, no default)."""
    closure = inspect.signature(type(optimizer).step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


FLOAT32_MAX = 3.4028234663852886e38


def _representable(value: float) -> bool:
    """Finite and within float32's range (an int past float64 overflows, so it is not)."""
    try:
        return math.isfinite(float(value)) and abs(float(value)) <= FLOAT32_MAX
    except OverflowError:
        return False


def _numbers(tree: Any, prefix: str = ""):
    """(dotted key, value) for every number in a hyperparameter tree (lists indexed)."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for key, value in items:
        name = f"{prefix}{key}" if isinstance(tree, dict) else f"{prefix[:-1]}[{key}]"
        if isinstance(value, (dict, list, tuple)):
            yield from _numbers(value, f"{name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield name, value


def check_hparams(hparams: dict) -> None:
    """Refuse hyperparameters an optimizer accepts but that cannot train: an adaptive update
    m / (sqrt(v) + eps) (Adam and every optimizer with an ``eps`` of that kind) is 0/0 = NaN
    at step 1 wherever a gradient is 0 when eps = 0. Each optimizer's constructor checks
    its own ranges (lr >= 0, betas in [0, 1)) when ``validate`` builds it."""
    for key, value in _numbers(hparams):
        if not _representable(value):
            raise ValueError(
                f"invalid optimizer.{key}: {value!r:.40} (must be finite and within float32's "
                f"range, |x| <= {FLOAT32_MAX:.3g}: optimizer state is float32)"
            )
    momentum = hparams.get("momentum")
    if isinstance(momentum, (int, float)) and not isinstance(momentum, bool):
        if not 0 <= momentum < 1:
            raise ValueError(
                f"invalid optimizer.momentum: {momentum!r} (must be in [0, 1): at 1 or above "
                "the momentum buffer never forgets and the update grows without bound)"
            )
    if hparams.get("eps", 1.0) == 0:
        raise ValueError(
            "invalid optimizer.eps: 0 (Adam divides by sqrt(v) + eps: with eps=0 a zero "
            "gradient gives 0/0 = NaN at the first step; use eps > 0, e.g. 1e-8)"
        )
