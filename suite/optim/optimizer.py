"""What every in-house optimizer shares, as ``torch/optim/optimizer.py`` holds torch's.

- :func:`as_float` and :func:`check`: a hyperparameter as a Python float, refused in one
  line that names it and its value when it is not a finite number of the allowed range.
- :func:`with_defaults`: a family's constructor with other defaults (AdamW is Adam with
  ``weight_decay=1e-2``), the signature written once.
- :class:`Optimizer`: validates the defaults and every group added later
  (``add_param_group``), fills what older state dicts lack (``__setstate__``, see
  :mod:`suite.optim._compat`), and runs ``step`` as torch's optimizers do: the closure
  under ``enable_grad``, then :meth:`Optimizer._step_group` once per parameter group.
  A family implements ``_validate`` (one group's values) and ``_step_group`` (gather the
  group's tensors, initialise missing state, call :meth:`Optimizer._update`), and names
  its two functional cores: ``_core``, the pure one, and ``_fused_core``, the fused one of
  :mod:`suite.optim.kernels` that runs when built with ``fused=True``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from suite.optim._compat import upgrade_state

__all__ = ["Optimizer", "as_float", "check", "dense_real", "with_defaults"]


def as_float(name: str, value: Any) -> float:
    """``value`` as a Python float; a tensor must hold exactly one element."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"invalid {name}: a tensor with {value.numel()} elements (must hold exactly one)"
            )
        return float(value.item())
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"invalid {name}: {value!r} (must be a number)") from None


def check(name: str, value: Any, ok: Callable[[float], bool], rule: str) -> float:
    """``value`` as a float, refused unless finite and ``ok`` (``rule`` says what ok is)."""
    x = as_float(name, value)
    if not (math.isfinite(x) and ok(x)):
        raise ValueError(f"invalid {name}: {x} (must be {rule})")
    return x


def with_defaults(init: Callable[..., None], **defaults: Any) -> Callable[..., None]:
    """``init`` (a constructor) with ``defaults`` in place of some of its default values:
    the signature that ``inspect`` reports shows them, and a call binds its arguments
    to it as to ``init``'s own (positional ones included), then calls ``init``."""
    signature = inspect.signature(init)
    unknown = set(defaults) - set(signature.parameters)
    if unknown:
        raise TypeError(f"with_defaults: {sorted(unknown)} are not arguments of {init}")
    signature = signature.replace(
        parameters=[
            p.replace(default=defaults.get(p.name, p.default))
            for p in signature.parameters.values()
        ]
    )

    @functools.wraps(init)
    def __init__(*args: Any, **kwargs: Any) -> None:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:  # as Python words it: "AdamW.__init__() got ..."
            raise TypeError(f"{type(args[0]).__name__}.__init__() {e}") from None
        bound.apply_defaults()
        init(*bound.args, **bound.kwargs)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    return __init__


class Optimizer(torch.optim.Optimizer):
    """Base of the in-house optimizers (module docstring)."""

    # The path of a step: False, the pure-torch functional core (single-tensor or
    # foreach); True, the fused one (C++ on the CPU, Triton on a GPU, the pure core for
    # the tensors neither takes). Set by the constructor's ``fused`` flag.
    fused = False
    # The functional cores that step a group, with the same arguments, as
    # "module:function": ``_core`` the pure one, ``_fused_core`` the fused one (imported
    # on first use: its module imports the family's, and Triton stays optional).
    _core: str
    _fused_core: str

    def __init__(self, params: Any, defaults: dict, fused: bool | None = None) -> None:
        self._validate(defaults)
        super().__init__(params, defaults)
        if fused is not None:
            self.fused = bool(fused)

    def __getstate__(self) -> dict:  # pickling, deepcopy: keep the path
        return {**super().__getstate__(), "fused": self.fused}

    @staticmethod
    def _validate(group: dict) -> None:
        """Refuse a bad hyperparameter of ``group`` with a message naming it and its value."""
        raise NotImplementedError

    def _step_group(self, group: dict) -> None:
        """Update the parameters of ``group`` that have a gradient."""
        raise NotImplementedError

    def _update(self, *args: Any, **kwargs: Any) -> None:
        """Step a group through the functional core of this optimizer's path."""
        module, name = (self._fused_core if self.fused else self._core).split(":")
        getattr(importlib.import_module(module), name)(*args, **kwargs)

    def __setstate__(self, state: dict) -> None:  # load_state_dict, unpickling, deepcopy
        super().__setstate__(state)
        upgrade_state(self)  # older state dicts: group keys missing, step a number

    def add_param_group(self, param_group: dict) -> None:
        # Validate every group's own values too, not only the defaults.
        super().add_param_group(param_group)
        try:
            self._validate(self.param_groups[-1])
        except ValueError:
            self.param_groups.pop()
            raise

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        return loss


def dense_real(optimizer: Optimizer, p: Tensor, *, complex_ok: bool = False) -> None:
    """Refuse a sparse gradient or (unless ``complex_ok``) a complex parameter, naming
    the optimizer and the parameter's shape."""
    if p.grad is not None and p.grad.is_sparse:
        raise ValueError(
            f"{type(optimizer).__name__} does not support sparse gradients "
            f"(parameter of shape {tuple(p.shape)})"
        )
    if not complex_ok and torch.is_complex(p):
        raise ValueError(
            f"{type(optimizer).__name__} does not support complex "
            f"parameters (parameter of shape {tuple(p.shape)})"
        )
