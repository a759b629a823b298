"""A study's SQLite file, kept small enough to commit by the hundred.

Optuna's schema holds about 30 tables and indexes, and SQLite gives each at least one
page. At SQLite's default 4,096-byte page a study of four trials takes 112 KiB, nearly all
of it empty pages: a tier of 280 studies would be 30 MiB of them. At the smallest page
SQLite allows (512 bytes) the same study takes about 24 KiB, with every row unchanged.

- :func:`create_small`: a new study file starts with 512-byte pages (the page size can
  only be chosen before the first table exists, or by a VACUUM);
- :func:`compact`: rewrite an existing file with 512-byte pages (``VACUUM``, which SQLite
  does atomically through its rollback journal; the rows are copied, not re-encoded);
- :func:`compact_tree`: every ``study.db`` below a folder; a file that another process
  holds is left as it is and named.

``python -m suite.tune.study_file ROOT`` (``make tier-compact``) compacts a tier's
committed studies; run it while no campaign writes them.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

PAGE_BYTES = 512  # SQLite's smallest page size


def sqlite_path(storage_url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL, or None for any other storage."""
    prefix = "sqlite:///"
    if not storage_url.startswith(prefix) or storage_url == prefix + ":memory:":
        return None
    return Path(storage_url[len(prefix) :])


def create_small(path: Path) -> None:
    """Create an empty SQLite file with PAGE_BYTES pages, unless ``path`` exists."""
    if path.exists():
        return
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute(f"PRAGMA page_size = {PAGE_BYTES}")
        db.execute("VACUUM")  # writes the header, so the page size is fixed before Optuna
    finally:
        db.close()


def compact(path: Path) -> tuple[int, int]:
    """Rewrite ``path`` with PAGE_BYTES pages; (bytes before, bytes after).

    Raises sqlite3.OperationalError if another connection holds the file."""
    before = path.stat().st_size
    db = sqlite3.connect(path, timeout=0.5, isolation_level=None)
    try:
        small = db.execute("PRAGMA page_size").fetchone()[0] == PAGE_BYTES
        if small and db.execute("PRAGMA freelist_count").fetchone()[0] == 0:
            return before, before  # compact already: left byte for byte (no churn in git)
        db.execute(f"PRAGMA page_size = {PAGE_BYTES}")
        db.execute("VACUUM")
    finally:
        db.close()
    return before, path.stat().st_size


def compact_tree(root: Path, log=print) -> tuple[int, int, int, list[Path]]:
    """Compact every ``study.db`` below ``root``: (files compacted, bytes before, bytes
    after, files held)."""
    done = total_before = total_after = 0
    held: list[Path] = []
    for path in sorted(Path(root).rglob("study.db")):
        try:
            before, after = compact(path)
        except sqlite3.OperationalError as e:
            log(f"{path}: left as it is ({e}); run again when no campaign writes it")
            held.append(path)
            continue
        done += 1
        total_before += before
        total_after += after
    return done, total_before, total_after, held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suite.tune.study_file", description=__doc__)
    parser.add_argument("root", type=Path, help="a folder holding study.db files, e.g. results/cpu")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"{args.root}: not a folder; give the tier or study folder that holds study.db files")
        return 2
    done, before, after, held = compact_tree(args.root)
    print(f"{done} study files: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB; {len(held)} held")
    return 1 if held else 0


if __name__ == "__main__":
    sys.exit(main())
