"""A run folder's life around the record: what may reopen it, and what a refusal leaves.

- :func:`check_resume_config`: a resume continues the recorded run or nothing. The new
  resolved config is compared with the recorded ``config.yaml`` key by key; any
  difference outside :data:`EXEMPT` (keys that do not change the numbers) is refused
  with one line naming each key and both values, before anything is written.
- :func:`save_hydra_files`: Hydra's ``.hydra/`` (config, hydra config, overrides),
  written by the suite only once the run has passed every check (``hydra.output_subdir``
  is null, so Hydra itself never touches a finished folder).
- :func:`remove_if_empty`: a refused run leaves no empty ``runs/<date>/<time>_...``
  folder behind (only folders it created, only if empty).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from suite.record import RecordError

# Top-level keys a resume may change: where and how the run is watched, not what it computes.
EXEMPT = ("logger", "progress", "threads", "checkpoint_every", "resume")


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a.b": 1, "c": [1, 2]}`` (lists are values)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}"))
    return flat


def config_differences(recorded: dict, new: dict) -> list[str]:
    """``"key: recorded R, now N"`` for each leaf that differs outside EXEMPT."""
    old, now = flatten(recorded), flatten(new)
    out = []
    for key in sorted(set(old) | set(now)):
        if key.split(".")[0] in EXEMPT or old.get(key, "<absent>") == now.get(key, "<absent>"):
            continue
        out.append(
            f"{key}: recorded {old.get(key, '<absent>')!r}, now {now.get(key, '<absent>')!r}"
        )
    return out


def check_resume_config(run_dir: Path, cfg: DictConfig) -> None:
    """Raise RecordError if ``cfg`` differs from the run's recorded config.yaml."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        if (Path(run_dir) / "checkpoint.pt").exists():  # the config went, the state did not
            raise RecordError(
                f"resume refused: {path} is missing but a checkpoint is there, so the run's "
                "config cannot be checked; restore config.yaml or start a new run folder"
            )
        return  # killed before the config was written: nothing recorded to differ from
    try:  # OmegaConf's loader builds no python objects (a !!python tag is an error)
        recorded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as e:  # noqa: BLE001  yaml, omegaconf, unicode: one line, nothing run
        reason = " ".join(str(e).split())[:200]
        raise RecordError(
            f"resume refused: {path} is not a readable config ({type(e).__name__}: {reason}); "
            "restore it or start a new run folder"
        ) from None
    if not isinstance(recorded, dict):
        raise RecordError(f"resume refused: {path} is not a config mapping (truncated?)")
    diff = config_differences(recorded, OmegaConf.to_container(cfg, resolve=True))
    if diff:
        raise RecordError(
            f"resume refused: the config differs from {path}: {'; '.join(diff)} "
            "(resume with the recorded values, or start a new run folder)"
        )


def save_hydra_files(run_dir: Path, cfg: DictConfig) -> None:
    """Write what Hydra's ``output_subdir`` would have: ``.hydra/{config,hydra,overrides}.yaml``."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.instance().cfg
    out = Path(run_dir) / ".hydra"
    out.mkdir(exist_ok=True)
    OmegaConf.save(cfg, out / "config.yaml")
    OmegaConf.save(hydra_cfg, out / "hydra.yaml")
    OmegaConf.save(hydra_cfg.hydra.overrides.task, out / "overrides.yaml")


def remove_if_empty(run_dir: Path, keep: Path | None) -> None:
    """Remove ``run_dir`` (this run's ``*.log`` in it included) and then its parents while
    they are empty, stopping at ``keep`` (the nearest folder that existed before the run)
    and never at or above the working dir."""
    path, stop = Path(run_dir).absolute(), {Path.cwd().absolute()}
    if keep is not None:
        stop.add(Path(keep).absolute())
    if path not in stop:  # made by this run: its Hydra job log (a library's warning) goes too
        for log in path.glob("*.log"):
            log.unlink()
    while path not in stop and path != path.parent:
        try:
            os.rmdir(path)  # only an empty folder
        except OSError:
            return
        path = path.parent
