"""Loading state dicts written by older code, as torch's own optimizers do in ``__setstate__``.

``Optimizer.load_state_dict`` ends with ``self.__setstate__({"state": ..., "param_groups":
...})``; torch's Adam/SGD use that hook to fill group keys that older versions did not
save (``maximize``, ``foreach``, ...) and to turn a ``step`` saved as a Python number into
a tensor. :func:`upgrade_state` does the same for the in-house optimizers: every missing
group key takes the optimizer's default, every numeric ``step`` becomes a float32 tensor.
"""

from __future__ import annotations

import torch

# Defaults torch's own Optimizer.__setstate__ adds; not hyperparameters of ours.
TORCH_ADDED = ("differentiable",)


def upgrade_state(optimizer: torch.optim.Optimizer) -> None:
    for group in optimizer.param_groups:
        for key, value in optimizer.defaults.items():
            if key not in TORCH_ADDED:
                group.setdefault(key, value)
        for p in group["params"]:
            state = optimizer.state.get(p)
            if state and isinstance(state.get("step"), (int, float)):
                state["step"] = torch.tensor(float(state["step"]), dtype=torch.float32)
