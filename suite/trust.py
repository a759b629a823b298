"""What is read from a config, a record or a study is data, never code.

- :func:`refuse_targets`: Hydra's ``instantiate`` builds every mapping with a ``_target_``
  it meets, recursively, so ``optimizer.weight_decay={_target_: pathlib.Path.write_text,
  ...}`` would call ``write_text`` before any check. Only the optimizer's own top-level
  ``_target_`` is a class to build; any other mapping with ``_target_``, at any depth and
  under any key (lists included, ``${oc.create:...}`` resolved), is refused in one line
  before anything is built.
- :func:`check_overrides`: Hydra overrides read from a file someone else made (a
  baseline's ``budget.extra`` in ``study.json``, a trial's stored ``overrides`` in
  ``study.db``) are checked against the keys a run accepts, and their values must be
  plain (numbers, strings, lists of them), never a mapping.
- :func:`inside`: a relative path read from a record is resolved under its root and
  refused if it leaves it (``../../etc``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

TARGET = "_target_"


def refuse_targets(value: Any, where: str) -> None:
    """Raise ValueError if ``value`` (plain containers) holds a mapping with ``_target_``."""
    if isinstance(value, dict):
        if TARGET in value:
            raise ValueError(
                f"refused {where}: a mapping with _target_ ({value[TARGET]!r}) is code to "
                "run, not a value; nothing was built (give a number, string or list)"
            )
        for key, item in value.items():
            refuse_targets(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            refuse_targets(item, f"{where}[{i}]")


def check_run_config(cfg: Any) -> None:
    """Refuse any ``_target_`` in a composed run config but the optimizer's own class
    (ValueError, one line). ``cfg`` is a DictConfig; it is resolved to plain containers."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        tree = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        raise ValueError(f"cannot resolve the config: {' '.join(str(e).split())}") from None
    for key, value in tree.items():
        if key == "optimizer" and isinstance(value, dict):
            for name, item in value.items():
                if name != TARGET:
                    refuse_targets(item, f"optimizer.{name}")
        else:
            refuse_targets(value, key)


def check_overrides(
    overrides: Iterable[str], accepts: Callable[[str], bool], where: str, valid: str
) -> None:
    """Raise ValueError unless every override sets a key ``accepts`` (its name without
    ``+``/``++``) to a plain value. ``valid`` names the accepted keys in the message."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    overrides = list(overrides)
    for text in overrides:
        if not isinstance(text, str):
            raise ValueError(f"refused {where} override {text!r}: not a string")
        try:
            (o,) = OverridesParser.create().parse_overrides([text])
        except (HydraException, ValueError) as e:
            raise ValueError(
                f"refused {where} override {text!r}: {str(e).splitlines()[0]}"
            ) from None
        key = o.key_or_group
        if (
            o.is_delete()
            or o.package
            or o.is_sweep_override()
            or any(part.startswith("_") for part in key.split("."))
            or not accepts(key)
        ):
            raise ValueError(f"refused {where} override {text!r}: {valid}")
        refuse_targets(o.value(), key)


def inside(root: Path, relative: Any, what: str) -> Path:
    """``root / relative``, resolved; ValueError if it is not a relative path under ``root``."""
    if not isinstance(relative, str) or not relative:
        raise ValueError(f"refused {what} {relative!r}: not a relative path")
    base = Path(root).resolve()
    path = (base / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(base):
        raise ValueError(f"refused {what} {relative!r}: it leaves {base}")
    return path
