"""A researcher's own optimizer as a suite entry, from their folder or an import path.

Two ways in, one result (an :class:`OwnEntry`: a folder holding ``optimizer/<name>.yaml``,
put on ``hydra.searchpath`` for every run, trial and rerun):

- ``--config-dir DIR --optimizer NAME``: the user's ``DIR/optimizer/NAME.yaml``;
- ``--target module.Class [--hparams FILE.yaml]``: a class and a YAML of its arguments
  (and ``_search_``), from which the entry file is written.

Either way the entry is checked against the class before any work:

- every argument in the YAML is one the constructor takes (``inspect.signature``; a class
  taking ``**kwargs`` accepts any), so nothing is injected that the class does not take;
- the search space (the YAML's ``_search_``, replaced by ``--space FILE``) is checked as
  the suite's own (:func:`suite.tune.space.check_space`) and holds only constructor
  arguments;
- with no space given, lr is searched log-uniformly two decades either side of the
  class's default lr:  lr ~ exp(U(log(lr0 / 100), log(lr0 * 100))),  so an lr-free
  method such as Prodigy (lr0 = 1) is searched around 1, not at 1e-5..1e-1.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from suite.optim.entry import import_class
from suite.tune.space import CONF, SEARCH_KEY, SpaceError, check_space

DECADES = 2  # the default lr space: lr0 * 10**-DECADES .. lr0 * 10**DECADES


@dataclass(frozen=True)
class OwnEntry:
    name: str
    config_dir: Path  # holds optimizer/<name>.yaml; goes on hydra.searchpath
    config: dict  # the entry as written (with its checked _search_)

    @property
    def searchpath_override(self) -> str:
        return f"hydra.searchpath=[file://{self.config_dir.resolve()}]"


def constructor_arguments(cls: type) -> tuple[dict[str, Any], bool]:
    """({argument: default or inspect.Parameter.empty}, takes **kwargs) of ``cls.__init__``,
    without ``self`` and the parameters argument."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if params and params[0].name in ("params", "param_groups", "parameters"):
        params = params[1:]
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    named = {
        p.name: p.default
        for p in params
        if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }
    return named, var_kw


def default_space(lr0: float) -> dict:
    """Log-uniform lr, two decades either side of the class's default ``lr0``."""
    f = 10.0**DECADES
    return {"lr": {"type": "log", "low": float(lr0) / f, "high": float(lr0) * f}}


def _read_yaml(path: Path, what: str) -> dict:
    if not Path(path).is_file():
        raise SpaceError(f"{what} {path} does not exist")
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise SpaceError(f"{what} {path}: expected a mapping, got {type(data).__name__}")
    return data


def checked(name: str, cfg: dict, space: dict | None = None, where: str = "") -> dict:
    """``cfg`` (an optimizer entry as a plain dict) checked against its class, with its
    search space: ``space`` if given, else its ``_search_``, else :func:`default_space`."""
    where = where or f"optimizer {name!r}"
    if "_target_" not in cfg:
        raise SpaceError(f"{where}: no _target_ (the optimizer class, module.Class)")
    cls = import_class(str(cfg["_target_"]))
    named, var_kw = constructor_arguments(cls)
    cfg = {**cfg, "_partial_": True}
    args = [k for k in cfg if not (str(k).startswith("_") and str(k).endswith("_"))]
    unknown = [k for k in args if k not in named]
    if unknown and not var_kw:
        raise SpaceError(
            f"{where}: {cls.__name__} takes no argument {unknown[0]!r}; valid: {', '.join(named)}"
        )
    if "lr" not in cfg and isinstance(named.get("lr"), (int, float)):
        cfg["lr"] = named["lr"]  # the class's default, so the space has a centre and a path
    if space is None:
        space = cfg.get(SEARCH_KEY)
    if space is None:
        if not isinstance(cfg.get("lr"), (int, float)) or cfg["lr"] <= 0:
            raise SpaceError(
                f"{where}: no {SEARCH_KEY} and no default lr to centre one on; "
                f"give lr or a {SEARCH_KEY} block (or --space FILE)"
            )
        space = default_space(cfg["lr"])
    cfg[SEARCH_KEY] = space
    for path in space or {}:
        top = str(path).split(".")[0]
        if top not in named and not var_kw:
            raise SpaceError(
                f"{where}: {SEARCH_KEY}.{path}: {cls.__name__} takes no argument {top!r}; "
                f"valid: {', '.join(named)}"
            )
        default = named.get(top, inspect.Parameter.empty)
        if top not in cfg and isinstance(default, (int, float, bool, list, tuple)):
            cfg[top] = list(default) if isinstance(default, tuple) else default  # the class's own
    check_space(cfg, where)
    return cfg


def _write(name: str, cfg: dict, folder: Path) -> OwnEntry:
    if (CONF / "optimizer" / f"{name}.yaml").is_file():
        raise SpaceError(
            f"optimizer name {name!r} is a suite entry; give yours another name "
            "(a searchpath entry never replaces a suite entry)"
        )
    path = folder / "optimizer" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# written by optbench from the user's entry, checked against its class\n"
    text += yaml.safe_dump(cfg, sort_keys=False)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return OwnEntry(name, folder, cfg)


def from_folder(config_dir: Path, name: str, space_file: Path | None, out: Path) -> OwnEntry:
    """The user's ``config_dir/optimizer/<name>.yaml``, checked, written to ``out``."""
    src = Path(config_dir) / "optimizer" / f"{name}.yaml"
    if not src.is_file():
        valid = sorted(p.stem for p in (Path(config_dir) / "optimizer").glob("*.yaml"))
        raise SpaceError(
            f"unknown optimizer {name!r} in {config_dir}/optimizer; valid: {', '.join(valid) or '(none)'}"
        )
    space = _read_yaml(space_file, "--space").get(SEARCH_KEY) if space_file else None
    if space_file and space is None:
        space = _read_yaml(space_file, "--space")
    return _write(name, checked(name, _read_yaml(src, "optimizer"), space, str(src)), out)


def from_target(
    target: str | type,
    hparams: dict | Path | None,
    out: Path,
    name: str | None = None,
    space: dict | Path | None = None,
) -> OwnEntry:
    """An entry for class ``target`` (``module.Class`` or the class) with ``hparams`` (a
    dict or a YAML file of arguments and ``_search_``), written to ``out``."""
    if isinstance(target, type):
        target = f"{target.__module__}.{target.__qualname__}"
    cfg = dict(
        _read_yaml(hparams, "hparams") if isinstance(hparams, (str, Path)) else hparams or {}
    )
    if isinstance(space, (str, Path)):
        data = _read_yaml(space, "--space")
        space = data.get(SEARCH_KEY, data)
    cfg = {"_target_": str(target), **{k: v for k, v in cfg.items() if k != "_target_"}}
    name = name or str(target).rpartition(".")[2].lower()
    return _write(name, checked(name, cfg, space, f"{target}"), out)
