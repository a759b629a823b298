"""Where datasets live: one folder per dataset under a data root.

The root is, in order: the explicit ``root`` argument (config ``data.root``),
the environment variable ``OPTBENCH_DATA``, then ``~/.cache/optbench``.
Datasets are never stored in the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "OPTBENCH_DATA"
CACHE_ENV_VAR = "OPTBENCH_CACHE"
DEFAULT_ROOT = Path("~/.cache/optbench")


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$OPTBENCH_DATA``, else ``~/.cache/optbench``."""
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR, "")
    if env:
        return Path(env).expanduser()
    return DEFAULT_ROOT.expanduser()


def cache_root() -> Path:
    """Where derived files go (tokenizers, encoded corpora, verified digests): never the
    data folder, which may be shared. ``$OPTBENCH_CACHE``, else ``~/.cache/optbench``."""
    env = os.environ.get(CACHE_ENV_VAR, "")
    return Path(env).expanduser() if env else DEFAULT_ROOT.expanduser()
