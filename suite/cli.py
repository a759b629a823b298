"""``optbench``: the suite's commands, from any folder (the Makefile's targets call them).

    optbench run     [--config-dir DIR] [--target module.Class [--hparams FILE]] [overrides...]
    optbench tune    --task T (--optimizer NAME [--config-dir DIR] | --target C [--hparams F])
                     [--space FILE] --trials K [...]           (python -m suite.tune)
    optbench compare (--optimizer NAME [--config-dir DIR] | --target C [--hparams F])
                     [--space FILE] --out DIR [--baselines DIR] (python -m suite.tune.compare)
    optbench report  RUNS... --out DIR [--config-dir DIR]       (python -m suite.report)
    optbench bench   [PROFILE] [...]                            (python -m suite.bench.profile)

A user's optimizer (``--config-dir DIR`` with ``DIR/optimizer/NAME.yaml``, or ``--target``
with a YAML of arguments and ``_search_``) is checked against its class by
:mod:`suite.own`; for tune and compare the checked entry is written to ``OUT/entry`` and that
folder is on ``hydra.searchpath`` for every trial and rerun. Other arguments go on to the
module the subcommand names (``optbench tune --help`` shows them).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from suite.tune.space import SpaceError

COMMANDS = ("run", "tune", "compare", "report", "bench")


def _own_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"optbench {prog}", add_help=False)
    p.add_argument("--config-dir", type=Path, default=None, help="a folder of optimizer/*.yaml")
    p.add_argument("--target", default=None, help="an optimizer class, module.Class")
    p.add_argument("--hparams", type=Path, default=None, help="YAML: its arguments, _search_")
    p.add_argument(
        "--space", type=Path, default=None, help="YAML: a _search_ that replaces the entry's"
    )
    p.add_argument("--name", default=None, help="the entry's name with --target (default: class)")
    return p


def own_entry(a: argparse.Namespace, optimizer: str | None, out: Path):
    """The checked user entry, written below ``out``; None when the suite's own is meant."""
    from suite import own

    if a.target:
        return own.from_target(a.target, a.hparams, out, name=a.name or optimizer, space=a.space)
    if a.config_dir is not None:
        if not optimizer:
            raise SpaceError(
                "--config-dir needs the entry's name: --optimizer NAME (run: optimizer=NAME), "
                "a file DIR/optimizer/NAME.yaml"
            )
        return own.from_folder(a.config_dir, optimizer, a.space, out)
    if a.space is not None:
        raise SpaceError("--space is for your own entry: give --config-dir DIR or --target")
    return None


def _value(rest: list[str], flag: str) -> str | None:
    rest = rest[: rest.index("--")] if "--" in rest else rest
    for i, x in enumerate(rest):
        if x == flag and i + 1 < len(rest):
            return rest[i + 1]
        if x.startswith(flag + "="):
            return x.split("=", 1)[1]
    return None


def _replace(rest: list[str], flag: str, value: str) -> list[str]:
    """``rest`` with ``flag value`` set once, in front of a ``--`` (the runs' overrides)."""
    cut = rest.index("--") if "--" in rest else len(rest)
    head, tail, out, skip = rest[:cut], rest[cut:], [], False
    for i, x in enumerate(head):
        if skip:
            skip = False
        elif x == flag and i + 1 < len(head):
            skip = True
        elif not x.startswith(flag + "="):
            out.append(x)
    return [flag, value, *out, *tail]


def cmd_run(argv: list[str]) -> int:
    a, rest = _own_parser("run").parse_known_args(argv)
    name = next((o.split("=", 1)[1] for o in rest if o.startswith("optimizer=")), None)
    with tempfile.TemporaryDirectory(prefix="optbench-entry-") as tmp:
        entry = own_entry(a, name, Path(tmp))
        if entry is not None:
            rest = [o for o in rest if not o.startswith("optimizer=")]
            rest = [f"optimizer={entry.name}", entry.searchpath_override, *rest]
        return subprocess.run([sys.executable, "-m", "suite.run", *rest]).returncode


def _tune_like(argv: list[str], module: str, default_out) -> int:
    a, rest = _own_parser(module).parse_known_args(argv)
    optimizer = _value(rest, "--optimizer")
    out = _value(rest, "--out")
    name = optimizer or a.name or (a.target or "").rpartition(".")[2].lower()  # own.from_target's
    out = Path(out) if out else default_out(rest, name)
    entry = own_entry(a, optimizer, out / "entry")
    if entry is not None:
        rest = _replace(rest, "--optimizer", entry.name)
        rest = _replace(rest, "--config-dir", str(entry.config_dir))
        if module == "suite.tune" and _value(rest, "--out") is None:
            rest = _replace(rest, "--out", str(out))
    main = __import__(module + (".__main__" if module == "suite.tune" else ""), fromlist=["main"])
    code = main.main(rest)
    if code == 0 and module == "suite.tune.compare":
        _flag_stale(Path(_value(rest, "--baselines") or "results/baselines"), out)
    return code


def _flag_stale(baselines: Path, out: Path) -> None:
    """Say in one line (and in report.md) when the baselines come from another suite/torch."""
    from suite.record import atomic_write_text
    from suite.tune.stale import stale_note

    note = stale_note(baselines, out / "studies")
    if note and (out / "report.md").is_file():
        print(f"warning: {note}", flush=True)
        report = (out / "report.md").read_text()
        atomic_write_text(out / "report.md", report + f"\n## Stale baselines\n\n{note}\n")


def cmd_tune(argv: list[str]) -> int:
    def default_out(rest, optimizer):
        return Path("runs/tune") / (_value(rest, "--task") or "task") / optimizer

    return _tune_like(argv, "suite.tune", default_out)


def cmd_compare(argv: list[str]) -> int:
    def default_out(rest, optimizer):
        raise SpaceError("compare needs --out DIR (a folder for the leaderboard)")

    return _tune_like(argv, "suite.tune.compare", default_out)


def cmd_report(argv: list[str]) -> int:
    from suite.report.__main__ import main

    p = argparse.ArgumentParser(prog="optbench report", add_help=False)
    p.add_argument("--config-dir", type=Path, default=None)
    a, rest = p.parse_known_args(argv)
    if a.config_dir is not None and not list((a.config_dir / "optimizer").glob("*.yaml")):
        raise SpaceError(f"--config-dir {a.config_dir}: no optimizer/*.yaml in it")
    # the report reads records only (it imports no optimizer): a user's entries are known
    # from their records (family custom, or a package the suite ships no entry for) and
    # stand out in every plot (suite/report/present/plots/style.py); --config-dir is taken for symmetry
    return main(rest)


def cmd_bench(argv: list[str]) -> int:
    from suite.bench.profile import main

    return main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, "")  # as `python -m` does: the user's modules in this folder import
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1])
        if argv and argv[0] not in ("-h", "--help"):
            print(
                f"error: unknown command {argv[0]!r}; valid: {', '.join(COMMANDS)}", file=sys.stderr
            )
            return 2
        return 0
    try:
        return globals()[f"cmd_{argv[0]}"](argv[1:])
    except (SpaceError, ValueError) as e:
        print(f"error: {e}".splitlines()[0], file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
