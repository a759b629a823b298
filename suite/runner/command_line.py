"""The command line's checks, before Hydra composes anything: an unknown option of a
config group (``task=nope``, ``optimizer=adamw,nope``), a group option whose YAML does not
parse, or an unknown key set without ``+`` (``bogus=1``) is one line, not Hydra's 20- to
90-line listing. :func:`refuse_unknown_choices` prints it and exits 2.
"""

from __future__ import annotations

import sys
import typing
from dataclasses import is_dataclass
from pathlib import Path

from suite.runner.schema import CONF, Config, valid_keys

GROUPS = ("task", "optimizer", "schedule", "logger", "experiment")


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
        return f"unknown key {key!r}; valid top-level keys: {valid_keys(Config)}"
    if (
        rest
        and is_dataclass(hints[top])
        and rest.split(".")[0] not in hints[top].__dataclass_fields__
    ):
        return f"unknown key {key!r}; valid {top} keys: {valid_keys(hints[top])}"
    return None


def refuse_unknown_choices(argv: list[str] = sys.argv[1:]) -> None:  # noqa: B006
    """Exit 2 with one line if the command line names an unknown group option."""
    problem = check_choices(argv)
    if problem:
        print(f"error: {problem}", file=sys.stderr, flush=True)
        sys.exit(2)
