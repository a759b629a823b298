"""An optimizer's search space: the ``_search_`` block at the end of ``conf/optimizer/<name>.yaml``.

Format: a mapping from a hyperparameter path to a spec::

    _search_:
      lr: {type: log, low: 1.0e-4, high: 3.0e-2}          # lr = exp(U(log low, log high))
      betas.1: {type: one_minus_log, low: 1.0e-3, high: 1.0e-1}  # beta2 = 1 - x, x log-uniform
      momentum: {type: uniform, low: 0.8, high: 0.99}      # U(low, high)
      layers: {type: int, low: 1, high: 4}                 # an integer in [low, high]
      nesterov: {type: categorical, choices: [true, false]}

A dotted path walks the optimizer config; an integer part indexes a list (``betas.1`` is
the second entry of ``betas``). :func:`check_space` refuses unknown types, ``low >= high``,
log bounds <= 0, one_minus_log bounds outside (0, 1), and paths the config does not hold.
:func:`suggest` draws one point with an Optuna trial; :func:`overrides` turns it into the
Hydra overrides of an ordinary run.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SEARCH_KEY = "_search_"
TYPES = ("log", "uniform", "int", "categorical", "one_minus_log")
CONF = Path(__file__).resolve().parents[1] / "conf"


class SpaceError(ValueError):
    """A malformed search space: one line naming the file, the path and what is wrong."""


@dataclass(frozen=True)
class Param:
    path: str  # e.g. "lr", "betas.1"
    type: str  # one of TYPES
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _walk(cfg: Any, path: str) -> tuple[Any, Any]:
    """(container, key) of ``path`` in ``cfg``; KeyError if some part is not there."""
    parts = path.split(".")
    node = cfg
    for i, part in enumerate(parts):
        key: Any = part
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise KeyError(path)
            key = int(part)
        elif not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        if i == len(parts) - 1:
            return node, key
        node = node[key]
    raise KeyError(path)


def check_space(optimizer_cfg: dict, where: str = "optimizer") -> list[Param]:
    """The validated search space of one optimizer config (a plain dict), or SpaceError."""
    block = optimizer_cfg.get(SEARCH_KEY)
    if not isinstance(block, dict) or not block:
        raise SpaceError(f"{where}: no {SEARCH_KEY} block (a mapping of path -> spec)")
    params = []
    for path, spec in block.items():
        at = f"{where}: {SEARCH_KEY}.{path}"
        if not isinstance(spec, dict):
            raise SpaceError(f"{at}: expected a mapping {{type, low, high}}, got {spec!r}")
        kind = spec.get("type")
        if kind not in TYPES:
            raise SpaceError(f"{at}: unknown type {kind!r}; valid: {', '.join(TYPES)}")
        try:
            _walk(optimizer_cfg, str(path))
        except KeyError:
            raise SpaceError(f"{at}: the optimizer config has no {path!r}") from None
        if str(path).startswith("_"):
            raise SpaceError(f"{at}: {path!r} is not a hyperparameter")
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise SpaceError(f"{at}: categorical needs a non-empty list of choices")
            params.append(Param(str(path), kind, choices=tuple(choices)))
            continue
        low, high = spec.get("low"), spec.get("high")
        if not (_number(low) and _number(high)):
            raise SpaceError(f"{at}: low and high must be numbers, got {low!r}, {high!r}")
        if not low < high:
            raise SpaceError(f"{at}: low {low} must be < high {high}")
        if kind in ("log", "one_minus_log") and low <= 0:
            raise SpaceError(f"{at}: log bounds must be > 0, got low {low}")
        if kind == "one_minus_log" and high >= 1:
            raise SpaceError(f"{at}: one_minus_log bounds must be < 1 (x = 1 - value), got {high}")
        if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
            raise SpaceError(f"{at}: int bounds must be integers, got {low}, {high}")
        params.append(Param(str(path), kind, float(low), float(high)))
    return params


def load_config(name: str, conf: Path = CONF) -> dict:
    """``conf/optimizer/<name>.yaml`` as a plain dict; SpaceError naming the valid choices."""
    path = conf / "optimizer" / f"{name}.yaml"
    if not path.is_file():
        valid = sorted(p.stem for p in (conf / "optimizer").glob("*.yaml"))
        raise SpaceError(f"unknown optimizer {name!r}; valid: {', '.join(valid)}")
    return yaml.safe_load(path.read_text())


def load_space(name: str, conf: Path = CONF) -> list[Param]:
    return check_space(load_config(name, conf), f"conf/optimizer/{name}.yaml")


def suggest(trial: Any, space: list[Param]) -> dict[str, Any]:
    """One point of ``space`` drawn by an Optuna trial: {path: value} in the optimizer's units.

    one_minus_log is sampled as x (Optuna's parameter name ``<path>:1-x``) and returned as 1 - x.
    """
    values: dict[str, Any] = {}
    for p in space:
        if p.type == "log":
            values[p.path] = trial.suggest_float(p.path, p.low, p.high, log=True)
        elif p.type == "uniform":
            values[p.path] = trial.suggest_float(p.path, p.low, p.high)
        elif p.type == "int":
            values[p.path] = trial.suggest_int(p.path, int(p.low), int(p.high))
        elif p.type == "one_minus_log":
            values[p.path] = 1.0 - trial.suggest_float(f"{p.path}:1-x", p.low, p.high, log=True)
        else:
            values[p.path] = trial.suggest_categorical(p.path, list(p.choices))
    return values


def apply(optimizer_cfg: dict, values: dict[str, Any]) -> dict:
    """A copy of the optimizer config (without ``_*_`` keys) with ``values`` set at their paths."""
    cfg = {k: copy.deepcopy(v) for k, v in optimizer_cfg.items() if not k.startswith("_")}
    for path, value in values.items():
        node, key = _walk(cfg, path)
        node[key] = value
    return cfg


def overrides(optimizer_cfg: dict, values: dict[str, Any]) -> list[str]:
    """Hydra overrides that set ``values`` on top of the config: one per top-level key touched
    (a list such as ``betas`` is passed whole: ``optimizer.betas=[0.9,0.995]``)."""
    new = apply(optimizer_cfg, values)
    top = sorted({path.split(".")[0] for path in values})
    return [f"optimizer.{k}={json.dumps(new[k], separators=(',', ':'))}" for k in top]
