"""The run config's one checking pass: :func:`check` refuses bad input before anything is
built (no data read, no model, no optimizer), with one :class:`ConfigError` of one line
that names the key, the bad value and the valid ones.

The pass, in order:

1. no ``_target_`` but the optimizer's class (``suite.trust``), and the group choices
   are names, not paths;
2. the top level and the ``schedule``, ``logger`` and ``data`` groups against the
   dataclasses below: unknown keys (``+schedule.warmup_step=5``) and types
   (``grad_clip=abc``) by OmegaConf's structured merge, then each value as written
   (``resume=no`` is a string, ``seed=true`` a bool) against its field's type and
   :class:`Rule` (range or choices);
3. the ``task`` group against its task's constructor (``suite.tasks.task_arguments``),
   the ``optimizer`` group against its ``_target_`` class's signature plus the suite's own
   ``_entry_``/``_search_`` keys and Hydra's instantiate keys;
4. which entry the run is (``suite.optim.entry.identity``), and the hyperparameters
   every optimizer must meet (``entry.check_hparams``) and the task fixes
   (``Task.fixed_hparams``).

What needs a built thing (the data files, the model's parameter groups, the memory)
is checked right after, by ``suite.run.setup``, still before the first step.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from suite import trust
from suite.runner.progress import MODES as PROGRESS_MODES
from suite.runner.wandb_mirror import MODES as WANDB_MODES

CONF = Path(__file__).resolve().parents[1] / "conf"
# Keys Hydra's instantiate() itself reads; every other ``_name_`` key of an optimizer config
# (``_entry_``: what the entry is, ``_search_``: its search space) is the suite's, not an argument.
HYDRA_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
SUITE_KEYS = ("_entry_", "_search_")  # the suite's own keys of an optimizer entry
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # a group choice: a file name, not a path


class ConfigError(ValueError):
    """Bad input found before any training: one line naming the value and the valid ones."""


@dataclass(frozen=True)
class Rule:
    """What a value must be beyond its type: ``low <= value <= high``, or one of ``choices``."""

    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    text: str = ""  # the range as the error states it, where ``low``/``high`` read badly

    def holds(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self) -> str:
        if self.text:
            return self.text
        if self.low is not None and self.high is not None:
            return f" in [{self.low:g}, {self.high:g}]"
        return f" >= {self.low:g}" if self.low is not None else f" <= {self.high:g}"


def ruled(default: Any, **rule: Any) -> Any:
    """A dataclass field with a :class:`Rule`."""
    return field(default=default, metadata={"rule": Rule(**rule)})


@dataclass
class Schedule:
    name: str = ruled("constant", choices=("constant", "warmup_cosine"))
    warmup_steps: float = ruled(0.0, low=0)  # a fraction (< 1) of the steps, or a step count
    min_lr_ratio: float = ruled(0.1, low=0, high=1)


@dataclass
class Logger:
    mode: str = ruled("auto", choices=WANDB_MODES)
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
    seed: int = ruled(0, low=0, high=2**63 - 1, text=" in [0, 2^63 - 1]")
    steps: Optional[int] = ruled(None, low=1)  # noqa: UP045
    eval_every: Optional[int] = ruled(None, low=0)  # noqa: UP045
    log_every: int = ruled(10, low=1)
    amp: Optional[str] = ruled(None, choices=("bf16", "fp16"))  # noqa: UP045
    grad_clip: Optional[float] = None  # noqa: UP045  (> 0: LoopConfig's own check)
    checkpoint_every: int = ruled(0, low=0)
    resume: bool = False
    device: str = ruled("auto", choices=("auto", "cpu", "cuda"))
    threads: Optional[int] = ruled(None, low=1)  # noqa: UP045
    telemetry_every: int = ruled(0, low=0)
    progress: str = ruled("auto", choices=PROGRESS_MODES)


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


def valid_keys(cls: type) -> str:
    return ", ".join(sorted(f.name for f in fields(cls)))


def check_structure(cfg: DictConfig) -> None:
    """Raise ValueError naming an unknown key (and the valid ones) or a value that does not
    convert to its field's type."""
    try:
        OmegaConf.merge(OmegaConf.structured(Config), cfg)
    except ConfigKeyError as e:
        key = str(e.full_key)
        cls, _ = _node(key)
        where = key.rsplit(".", 1)[0] + " " if "." in key else "top-level "
        raise ValueError(
            f"unknown key {key!r}; valid {where}keys: {valid_keys(cls) if is_dataclass(cls) else '?'}"
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


def _typed(value: Any, hint: Any) -> bool:
    """``value`` as written is of the field's type (a bool is not an int, an int is a number)."""
    args = typing.get_args(hint)
    if value is None:
        return type(None) in args
    kind = next((a for a in args if a is not type(None)), hint)
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return not isinstance(kind, type) or isinstance(value, kind)


def check_values(cfg: DictConfig, cls: type = Config, prefix: str = "") -> None:
    """Each value as written against its field's type and :class:`Rule` (ValueError)."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        key, value = prefix + f.name, cfg.get(f.name) if cfg is not None else None
        if is_dataclass(hints[f.name]):
            if value is not None:  # a group left out: its defaults
                check_values(value, hints[f.name], f"{key}.")
            continue
        if f.name not in cfg or hints[f.name] in (dict[str, Any], list[str]):
            continue  # absent: its default; task and optimizer: checked by their classes
        rule = f.metadata.get("rule")
        if rule and rule.choices and value is not None and not rule.holds(value):
            valid = ", ".join(["null"] * (type(None) in typing.get_args(hints[f.name])))
            valid += ", " * bool(valid) + ", ".join(map(str, rule.choices))
            raise ValueError(f"invalid {key} {value!r}; valid: {valid}")
        if not _typed(value, hints[f.name]) or (
            rule and value is not None and not rule.choices and not rule.holds(value)
        ):
            must = _expected(key) if not rule or rule.choices else _ranged(key, rule)
            raise ValueError(f"invalid {key}: {value!r} (must be {must})")


def _ranged(key: str, rule: Rule) -> str:
    kind, _, null = _expected(key).partition(" or ")
    return kind + rule.describe() + (" or null" if null else "")


def fixed_hparams_problem(task_name: str, fixed: dict, hparams: dict) -> str | None:
    """Why ``hparams`` break what the task fixes (``Task.fixed_hparams``), or None."""
    for key, value in fixed.items():
        got = hparams.get(key) or 0.0
        if got != value:
            return (
                f"task {task_name} fixes optimizer.{key}: {key} must be {value:g}, got {got:g} "
                f"(the task's definition, e.g. DeepOBS's unregularized problems); "
                f"pass optimizer.{key}={value:g}"
            )
    return None


@dataclass(frozen=True)
class Checked:
    """What the pass found the run to be: its optimizer entry and hyperparameters."""

    spec: Any  # suite.optim.registry.OptimSpec
    hparams: dict[str, Any]


def check(cfg: DictConfig, task_name: str, optimizer_name: str, overrides=()) -> Checked:
    """The one pass over a composed run config, before anything is built (module docstring);
    raises :class:`ConfigError` of one line, prefixed ``<task>/<optimizer>: ``."""
    from suite.optim import entry
    from suite.tasks import TASKS

    try:
        trust.check_run_config(cfg)
        for group, name in (("task", task_name), ("optimizer", optimizer_name)):
            if not NAME.fullmatch(str(name)):
                raise ValueError(f"invalid {group} {name!r}: a name from conf/{group}/, not a path")
        check_structure(cfg)
        check_values(cfg)
        check_task_keys(cfg.task)
        check_optimizer_keys(cfg.optimizer)
        optimizer = OmegaConf.to_container(cfg.optimizer, resolve=True)
        spec = entry.identity(optimizer_name, optimizer, overrides)
        hparams = {k: v for k, v in optimizer.items() if not k.startswith("_")}
        entry.check_hparams(hparams)
        problem = fixed_hparams_problem(task_name, TASKS[cfg.task.name].fixed_hparams, hparams)
        if problem:
            raise ValueError(problem)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{task_name}/{optimizer_name}: {e}".splitlines()[0]) from e
    return Checked(spec, hparams)
