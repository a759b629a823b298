"""Tasks by name, and ``build_task`` which checks the name and the arguments."""

from __future__ import annotations

import inspect

from .base import Target, Task
from .cnn import CNNTask
from .deepobs import DeepOBSTask
from .lm import LMTask
from .toy import ToyTask
from .vit import ViTTask

TASKS: dict[str, type[Task]] = {
    "cnn": CNNTask,
    "vit": ViTTask,
    "deepobs": DeepOBSTask,
    "lm": LMTask,
    "toy": ToyTask,
}


def task_arguments(name: str) -> list[str]:
    """The keyword arguments a task's constructor takes (what conf/task/*.yaml may set)."""
    return [p for p in inspect.signature(TASKS[name].__init__).parameters if p != "self"]


def build_task(name: str, **kwargs) -> Task:
    """Build the task ``name`` from keyword arguments; unknown names or arguments are errors."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    valid = task_arguments(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown argument(s) for task {name!r}: {', '.join(unknown)}; "
            f"valid: {', '.join(valid)}"
        )
    return TASKS[name](**kwargs)


def task_from_config(task_cfg: dict, data_root: str | None = None, device: str = "cpu") -> Task:
    """Build a task from its config group (``name`` + constructor arguments); ``data_root``
    goes only to tasks that read data files."""
    args = dict(task_cfg)
    name = args.pop("name")
    if name in TASKS and "data_root" in task_arguments(name):
        args["data_root"] = data_root
    return build_task(name, device=device, **args)


__all__ = ["TASKS", "Target", "Task", "build_task", "task_arguments", "task_from_config"]
