"""What ran, for the record: the constructor's arguments as they took effect, the package
(and version) the optimizer class came from, and an entry's state-precision claim held to
the measurement.

- :func:`resolved_arguments`: the constructor's signature defaults, overlaid with the
  arguments the config passed, overlaid with the built optimizer's ``defaults`` (what the
  class itself settled on, e.g. Prodigy's ``d0``, ADOPT's ``eps``): built once on a
  2 x 2 dummy parameter; where that build fails, signature + config alone (``built: false``).
- :func:`package_of`: the distribution that provides the class's top-level module and its
  version (None for a module that no installed distribution provides: a user's own file).
- :func:`state_bits_check`: one line when the claimed bits differ from the measured ones.
"""

from __future__ import annotations

import functools
import importlib.metadata
import inspect
import json
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

import torch


def _plain(value: Any) -> Any:
    """A JSON-safe copy: tuples to lists, tensors to numbers, the rest to their repr."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if torch.is_tensor(value) and value.numel() == 1:
        return value.item()
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def resolved_arguments(
    cls: type, passed: Mapping[str, Any], make: Callable[[list], torch.optim.Optimizer]
) -> dict[str, Any]:
    """{"arguments": {name: value}, "built": bool} as the optimizer took them."""
    args: dict[str, Any] = {}
    for p in list(inspect.signature(cls.__init__).parameters.values())[2:]:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        args[p.name] = None if p.default is inspect.Parameter.empty else p.default
    args.update(passed)
    built = False
    try:
        opt = make([{"params": [torch.nn.Parameter(torch.zeros(2, 2))]}])
        args.update({k: v for k, v in opt.defaults.items() if k != "params"})
        built = True
    except Exception:  # noqa: BLE001  a class that needs real groups: signature + config only
        pass
    return {"arguments": _plain(args), "built": built}


@functools.cache
def distributions() -> Mapping[str, list[str]]:
    """Top-level module -> distributions (``importlib.metadata``; a scan of every installed
    package, ~1.5 s here, so once per process, or once per fork server: ``suite.tune.warm``)."""
    return importlib.metadata.packages_distributions()


def package_of(target: str) -> dict[str, Any]:
    """{"class", "module", "distribution", "version"} of the class ``target`` names."""
    module = target.rpartition(".")[0]
    top = module.split(".", 1)[0]
    dists = distributions().get(top, [])
    dist = dists[0] if dists else None
    version = None
    if dist is not None:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    mod = sys.modules.get(module)
    return {
        "class": target,
        "module": module,
        "distribution": dist,
        "version": version,
        "file": getattr(mod, "__file__", None) if dist is None else None,
    }


def state_bits_check(name: str, claimed: int | None, measured: int | None) -> str | None:
    """The one-line warning when the entry's claim and the measured state bits differ."""
    if claimed is None or measured is None or int(claimed) == int(measured):
        return None
    return (
        f"warning: optimizer {name!r} claims state_bits {claimed} but its state measures "
        f"{measured} bits per value; the record keeps the measured {measured}"
    )
