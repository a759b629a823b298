"""The typed schema of a run's config: an unknown key or a mistyped value is refused
before any work, naming the key and the valid ones.

The top level and the ``schedule``, ``logger`` and ``data`` groups are dataclasses,
checked by OmegaConf's structured merge (``+schedule.warmup_step=5`` is a
``ConfigKeyError``, ``grad_clip=abc`` a ``ValidationError``). The ``task`` group is
checked against its task's constructor (``suite.tasks.task_arguments``) and the
``optimizer`` group against the signature of its ``_target_`` class, plus the suite's
own ``_entry_``/``_search_`` keys and Hydra's instantiate keys.

:func:`check_choices` refuses an unknown group option (``task=nope``) on the command
line, before Hydra composes and prints its 20-line listing.
"""

from __future__ import annotations

import inspect
import sys
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("task", "optimizer", "schedule", "logger", "experiment")
# Keys Hydra's instantiate() itself reads; every other ``_name_`` key of an optimizer config
# (``_entry_``: what the entry is, ``_search_``: its search space) is the suite's, not an argument.
HYDRA_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
SUITE_KEYS = ("_entry_", "_search_")  # the suite's own keys of an optimizer entry


@dataclass
class Schedule:
    name: str = "constant"
    warmup_steps: float = 0.0  # a fraction (< 1) of the steps, or a step count
    min_lr_ratio: float = 0.1


@dataclass
class Logger:
    mode: str = "auto"
    project: str = "optbench"
    entity: Optional[str] = None  # noqa: UP045 (OmegaConf reads typing.Optional)
    tags: list[str] = field(default_factory=list)


@dataclass
class Data:
    root: Optional[str] = None  # noqa: UP045


@dataclass
class Config:
    task: dict[str, Any] = field(default_factory=dict)  # checked against the task class
    optimizer: dict[str, Any] = field(default_factory=dict)  # against the optimizer class
    schedule: Schedule = field(default_factory=Schedule)
    logger: Logger = field(default_factory=Logger)
    data: Data = field(default_factory=Data)
    seed: int = 0
    steps: Optional[int] = None  # noqa: UP045
    eval_every: Optional[int] = None  # noqa: UP045
    log_every: int = 10
    amp: Optional[str] = None  # noqa: UP045
    grad_clip: Optional[float] = None  # noqa: UP045
    checkpoint_every: int = 0
    resume: bool = False
    device: str = "auto"
    threads: Optional[int] = None  # noqa: UP045
    telemetry_every: int = 0
    progress: str = "auto"


KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _node(key: str) -> tuple[type, str]:
    """(the dataclass holding dotted ``key``, the last part of it)."""
    cls, *parents, last = [Config, *key.split(".")]
    for part in parents:
        cls = typing.get_type_hints(cls)[part]
    return cls, last


def _expected(key: str) -> str:
    cls, last = _node(key)
    hint = typing.get_type_hints(cls).get(last)
    args = typing.get_args(hint)
    kind = KINDS.get(next((a for a in args if a is not type(None)), hint), str(hint))
    return kind + (" or null" if type(None) in args else "")


def _valid(cls: type) -> str:
    return ", ".join(sorted(f.name for f in fields(cls)))


def check_structure(cfg: DictConfig) -> None:
    """Raise ValueError naming an unknown key (and the valid ones) or a mistyped value."""
    try:
        OmegaConf.merge(OmegaConf.structured(Config), cfg)
    except ConfigKeyError as e:
        key = str(e.full_key)
        cls, _ = _node(key)
        where = key.rsplit(".", 1)[0] + " " if "." in key else "top-level "
        raise ValueError(
            f"unknown key {key!r}; valid {where}keys: {_valid(cls) if is_dataclass(cls) else '?'}"
        ) from None
    except ValidationError as e:
        key = str(e.full_key)
        raise ValueError(
            f"invalid {key}: {OmegaConf.select(cfg, key)!r} (must be {_expected(key)})"
        ) from None


def check_task_keys(task_cfg: DictConfig) -> None:
    from suite.tasks import TASKS, task_arguments

    name = task_cfg.get("name")
    if name not in TASKS:
        raise ValueError(f"unknown task.name {name!r}; valid: {', '.join(sorted(TASKS))}")
    valid = ["name", *task_arguments(name)]
    unknown = sorted(set(task_cfg) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown key task.{unknown[0]} for task {name!r}; valid: {', '.join(sorted(valid))}"
        )


def check_optimizer_keys(optimizer_cfg: DictConfig) -> None:
    import hydra

    target = optimizer_cfg.get("_target_")
    try:
        cls = hydra.utils.get_class(target)
    except Exception as e:  # noqa: BLE001  Hydra's ImportError is 50 lines: one is enough
        reason = " ".join(str(e).split("\n")[0].split())[:160]
        raise ValueError(
            f"invalid optimizer._target_ {target!r}: not an importable class ({reason}); "
            "check the module and class name"
        ) from None
    if not optimizer_cfg.get("_partial_", False):
        raise ValueError(
            f"optimizer config for {target} lacks `_partial_: true`: the suite passes the "
            "model's parameters later; add `_partial_: true` to its YAML"
        )
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # takes any keyword: the constructor itself is the check
    valid = [p for p in params if p != "params"]
    unknown = sorted(set(optimizer_cfg) - set(valid) - set(HYDRA_KEYS) - set(SUITE_KEYS))
    if unknown:
        raise ValueError(
            f"unknown key optimizer.{unknown[0]} for {cls.__name__}; "
            f"valid: {', '.join(sorted(valid))}"
        )


def check(cfg: DictConfig) -> None:
    """Every key of a composed run config is known and typed (ValueError otherwise)."""
    check_structure(cfg)
    check_task_keys(cfg.task)
    check_optimizer_keys(cfg.optimizer)


def options(group: str, searchpath: list[str] = ()) -> list[str]:
    """The options of a config group: conf/<group>/ plus the file:// folders of
    ``hydra.searchpath`` (other kinds of search path, pkg://, are left to Hydra)."""
    roots = [CONF] + [
        Path(p.removeprefix("file://"))
        for p in searchpath
        if "://" not in p or p.startswith("file://")
    ]
    return sorted({p.stem for root in roots for p in (Path(root) / group).glob("*.yaml")})


def check_choices(argv: list[str]) -> str | None:
    """The one-line error for an unknown option of a config group on the command line
    (``task=nope``, ``optimizer=adamw,nope``) or an unknown key set without ``+``
    (``bogus=1``), or None. Globs and the like are left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        overrides = OverridesParser.create().parse_overrides(
            [a for a in argv if not a.startswith("-")]
        )
    except HydraException:
        return None  # a malformed override: Hydra says what is wrong with it
    searchpath = [
        str(p)
        for o in overrides
        if o.key_or_group == "hydra.searchpath" and isinstance(o.value(), list)
        for p in o.value()
    ]
    for o in overrides:
        group = o.key_or_group in GROUPS
        unknown = _unknown_key(o.key_or_group) if o.type.name == "CHANGE" and not group else None
        if unknown:
            return unknown
        if o.key_or_group not in GROUPS or o.package or o.is_delete():
            continue
        if o.is_sweep_override():
            if o.value_type is None or o.value_type.name != "SIMPLE_CHOICE_SWEEP":
                continue
            names = list(o.sweep_string_iterator())
        else:
            value = o.value()
            if value is None:
                continue
            names = [str(value)]
        if any("://" in p and not p.startswith("file://") for p in searchpath):
            continue  # pkg:// and other search paths: Hydra itself lists what it finds
        valid = options(o.key_or_group, searchpath)
        for name in names:
            if name not in valid:
                return f"unknown {o.key_or_group} {name!r}; valid: {', '.join(valid)}"
            problem = _yaml_problem(o.key_or_group, name, searchpath)
            if problem:
                return problem
    return None


def _yaml_problem(group: str, name: str, searchpath: list[str]) -> str | None:
    """One line for a group option whose YAML does not parse (Hydra prints ~90 lines)."""
    import yaml

    roots = [CONF] + [
        Path(p.removeprefix("file://"))
        for p in searchpath
        if "://" not in p or p.startswith("file://")
    ]
    for root in roots:
        path = Path(root) / group / f"{name}.yaml"
        if path.is_file():
            try:
                yaml.safe_load(path.read_text())
            except yaml.YAMLError as e:
                mark = getattr(e, "problem_mark", None)
                where = f"{path}:{mark.line + 1}" if mark else str(path)
                what = getattr(e, "problem", None) or type(e).__name__
                return f"{where}: not valid YAML ({what}); fix the file"
            except (OSError, UnicodeDecodeError) as e:
                return f"{path}: unreadable ({e})"
    return None


def _unknown_key(key: str) -> str | None:
    """Hydra's multi-line "Could not override" as one line, for keys the schema knows."""
    top, _, rest = key.partition(".")
    if top == "hydra" or "@" in key or "/" in key:
        return None
    hints = typing.get_type_hints(Config)
    if top not in hints:
        return f"unknown key {key!r}; valid top-level keys: {_valid(Config)}"
    if (
        rest
        and is_dataclass(hints[top])
        and rest.split(".")[0] not in hints[top].__dataclass_fields__
    ):
        return f"unknown key {key!r}; valid {top} keys: {_valid(hints[top])}"
    return None


def refuse_unknown_choices(argv: list[str] = sys.argv[1:]) -> None:  # noqa: B006
    """Exit 2 with one line if the command line names an unknown group option."""
    problem = check_choices(argv)
    if problem:
        print(f"error: {problem}", file=sys.stderr, flush=True)
        sys.exit(2)
