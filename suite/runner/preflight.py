"""The run folder and checkpoint refusals before any work, each failing with one line.

The config itself is checked in one pass by ``suite.runner.schema.check``.

- :func:`check_checkpoint`: a torn or corrupt ``checkpoint.pt`` is never loaded
  (torch.load reads a bit-flipped file without complaint; the zip CRCs catch it).
  Raises ``RecordError``, which ``suite.run.main`` prints as ``error: ...``, exit 2.
- :class:`RunDirCheck`: a Hydra callback that checks the run (or sweep) folder
  can be created before Hydra tries to and fails with a traceback, e.g.
  ``hydra.run.dir=<a file>/run``.
"""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path
from typing import Any

from suite.record import RecordError


def check_checkpoint(path: Path) -> None:
    """Raise RecordError unless ``path`` is absent or a complete, uncorrupted torch.save
    zip archive (every member's CRC checked: reads the file once, unpickles nothing)."""
    path = Path(path)
    if not path.exists():
        return
    problem = None
    try:
        if not zipfile.is_zipfile(path):
            problem = (
                f"truncated or not a checkpoint ({path.stat().st_size} bytes, no zip directory)"
            )
        else:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            if bad is not None:
                problem = f"corrupt: CRC mismatch in {bad}"
            else:
                problem = _unsafe_pickle(path)
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        problem = f"unreadable ({' '.join(str(e).split())})"
    if problem:
        raise RecordError(
            f"{path}: {problem}; it was not loaded and nothing was changed: "
            "delete it to start the run over (resume=true), or restore a good copy"
        )


def _unsafe_pickle(path: Path) -> str | None:
    """Why ``path`` does not load with ``weights_only=True`` (tensors and plain types only:
    a pickle that names a function is refused, never called), else None."""
    import pickle

    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        lines = [x for x in str(e).splitlines() if "WeightsUnpickler error" in x]
        first = " ".join((lines or str(e).splitlines() or [""])[0].split())[:160]
        return f"holds more than tensors and plain types ({first})"
    return None


def check_run_dir(path: str | os.PathLike) -> None:
    """Raise RecordError if the folder ``path`` cannot be created or written, without
    creating anything (the nearest existing ancestor must be a writable folder)."""
    path = Path(path).absolute()
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor == path and not path.is_dir():
        raise RecordError(f"run folder {path} exists and is not a folder")
    if not ancestor.is_dir():
        raise RecordError(f"cannot create run folder {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RecordError(f"cannot create run folder {path}: {ancestor} is not writable")
    try:
        name_max = os.pathconf(ancestor, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    long = [p for p in path.relative_to(ancestor).parts if len(os.fsencode(p)) > name_max]
    if long:  # refused before Hydra makes the parents, so no empty folder is left behind
        raise RecordError(
            f"cannot create run folder: the name {long[0][:40]}... is {len(os.fsencode(long[0]))}"
            f" bytes, more than this file system's {name_max}; use a shorter hydra.run.dir"
        )


try:
    from hydra.experimental.callback import Callback
except ImportError:  # hydra is a dependency; this keeps the checks above importable alone
    Callback = object  # type: ignore[misc,assignment]


# The nearest folder that existed before Hydra made the run folder: a refused run removes
# the empty folders it made up to here (suite.runner.run_folder.remove_if_empty).
EXISTED: Path | None = None


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class RunDirCheck(Callback):
    """Hydra callback (``hydra.callbacks``): refuse an uncreatable run or sweep folder
    with one line, exit 2, before Hydra's own mkdir fails with a traceback."""

    def _check(self, config: Any, key: str) -> None:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        HydraConfig.instance().set_config(config)  # ${hydra:...} in the folder name
        global EXISTED
        try:
            folder = str(OmegaConf.select(config, key))
            EXISTED = _nearest_existing(Path(folder))
            check_run_dir(folder)
        except RecordError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(2)

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")
