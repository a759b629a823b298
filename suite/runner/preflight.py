"""Checks that refuse bad input before any work, each failing with one line.

- :func:`check_config`: the top-level keys Hydra takes as they come (a seed of
  ``-1`` or ``1.5``, ``steps=1.5``, ``resume=no``) and group choices that walk out
  of their folder (``task=../task/toy`` loads ``conf/task/../task/toy.yaml``).
  Raises ``ValueError``; ``suite.run.setup`` turns it into its one-line error.
- :func:`check_checkpoint`: a torn or corrupt ``checkpoint.pt`` is never loaded
  (torch.load reads a bit-flipped file without complaint; the zip CRCs catch it).
  Raises ``RecordError``, which ``suite.run.main`` prints as ``error: ...``, exit 2.
- :class:`RunDirCheck`: a Hydra callback that checks the run (or sweep) folder
  can be created before Hydra tries to and fails with a traceback, e.g.
  ``hydra.run.dir=<a file>/run``.
"""

from __future__ import annotations

import math
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

from suite.record import RecordError

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(cfg: Any, task_name: str, optimizer_name: str) -> None:
    """Refuse top-level values that would otherwise be coerced or misread."""
    for group, name in (("task", task_name), ("optimizer", optimizer_name)):
        if not NAME.fullmatch(str(name)):
            raise ValueError(f"invalid {group} {name!r}: a name from conf/{group}/, not a path")
    if not _is_int(cfg.seed) or not 0 <= cfg.seed < 2**63:
        raise ValueError(f"invalid seed: {cfg.seed!r} (must be an integer in [0, 2^63 - 1])")
    ratio = cfg.schedule.get("min_lr_ratio", 0.0)
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 <= ratio <= 1:
        raise ValueError(f"invalid schedule.min_lr_ratio: {ratio!r} (must be a number in [0, 1])")
    warmup = cfg.schedule.get("warmup_steps", 0)
    if not isinstance(warmup, (int, float)) or isinstance(warmup, bool) or not warmup >= 0:
        raise ValueError(f"invalid schedule.warmup_steps: {warmup!r} (must be a number >= 0)")
    if cfg.steps is not None and (not _is_int(cfg.steps) or cfg.steps < 1):
        raise ValueError(f"invalid steps: {cfg.steps!r} (must be an integer >= 1 or null)")
    for key, low in (("log_every", 1), ("eval_every", 0), ("checkpoint_every", 0)):
        value = cfg.get(key)
        if key == "eval_every" and value is None:
            continue
        if not _is_int(value) or value < low:
            raise ValueError(f"invalid {key}: {value!r} (must be an integer >= {low})")
    if not isinstance(cfg.resume, bool):
        raise ValueError(f"invalid resume: {cfg.resume!r} (must be true or false)")


FLOAT32_MAX = 3.4028234663852886e38


def _representable(value: float) -> bool:
    """Finite and within float32's range (an int past float64 overflows, so it is not)."""
    try:
        return math.isfinite(float(value)) and abs(float(value)) <= FLOAT32_MAX
    except OverflowError:
        return False


def _numbers(tree: Any, prefix: str = ""):
    """(dotted key, value) for every number in a hyperparameter tree (lists indexed)."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for key, value in items:
        name = f"{prefix}{key}" if isinstance(tree, dict) else f"{prefix[:-1]}[{key}]"
        if isinstance(value, (dict, list, tuple)):
            yield from _numbers(value, f"{name}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield name, value


def check_hparams(family: str, hparams: dict) -> None:
    """Refuse hyperparameters an optimizer accepts but that cannot train: an adaptive update
    m / (sqrt(v) + eps) (Adam and every optimizer with an ``eps`` of that kind) is 0/0 = NaN
    at step 1 wherever a gradient is 0 when eps = 0. ``family`` is kept for rules of one
    family."""
    for key, value in _numbers(hparams):
        if not _representable(value):
            raise ValueError(
                f"invalid optimizer.{key}: {value!r:.40} (must be finite and within float32's "
                f"range, |x| <= {FLOAT32_MAX:.3g}: optimizer state is float32)"
            )
    momentum = hparams.get("momentum")
    if isinstance(momentum, (int, float)) and not isinstance(momentum, bool):
        if not 0 <= momentum < 1:
            raise ValueError(
                f"invalid optimizer.momentum: {momentum!r} (must be in [0, 1): at 1 or above "
                "the momentum buffer never forgets and the update grows without bound)"
            )
    if hparams.get("eps", 1.0) == 0:
        raise ValueError(
            "invalid optimizer.eps: 0 (Adam divides by sqrt(v) + eps: with eps=0 a zero "
            "gradient gives 0/0 = NaN at the first step; use eps > 0, e.g. 1e-8)"
        )


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
