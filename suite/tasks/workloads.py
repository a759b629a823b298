"""A workload's definition, read from its ``conf/task/*.yaml`` as plain data.

A task config file is the one home of what its workload is beyond the model family's
code: the dataset, the model's sizes, the batch size, the augmentation, the step budget
and the val target (the task classes' constructors default these to None). A Hydra run
composes the file (``task=cnn_fashion``) and passes its keys to the task's constructor, so
the run reads them from its composed config. A task built in Python without them
(``build_task("cnn", dataset="mnist")``: tests, benchmarks) reads the same file here: the
one whose ``name`` and identity keys (``dataset``, ``arch``) match. OmegaConf loads the file
as data; nothing in it is instantiated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

TASK_CONF = Path(__file__).resolve().parents[1] / "conf" / "task"


def task_configs() -> dict[str, dict[str, Any]]:
    """Every ``conf/task/<stem>.yaml`` as a plain dict, by stem."""
    return {
        p.stem: OmegaConf.to_container(OmegaConf.load(p), resolve=True)
        for p in sorted(TASK_CONF.glob("*.yaml"))
    }


def workload(name: str, **identity: Any) -> tuple[str, dict[str, Any]]:
    """``(stem, config)`` of the one task config of task ``name`` whose keys equal
    ``identity`` (e.g. ``dataset="mnist"``); a ValueError in one line if none or several."""
    found = [
        (stem, cfg)
        for stem, cfg in task_configs().items()
        if cfg.get("name") == name and all(cfg.get(k) == v for k, v in identity.items())
    ]
    if len(found) != 1:
        which = ", ".join([f"name={name}", *(f"{k}={v}" for k, v in identity.items())])
        stems = ", ".join(stem for stem, _ in found) or "none"
        raise ValueError(
            f"{len(found)} task configs in {TASK_CONF} have {which} (found: {stems}); "
            "exactly one must, or pass the workload's values as arguments"
        )
    return found[0]


def fill(name: str, identity: dict[str, Any], **given: Any) -> dict[str, Any]:
    """``given`` with each None replaced by that key of the workload's task config (read
    only when some value is None, as when a task is built outside a Hydra run)."""
    if all(v is not None for v in given.values()):
        return given
    stem, cfg = workload(name, **identity)
    missing = [k for k, v in given.items() if v is None and cfg.get(k) is None]
    if missing:
        raise ValueError(f"{TASK_CONF / stem}.yaml sets no {missing[0]}; set it there or pass it")
    return {k: cfg[k] if v is None else v for k, v in given.items()}
