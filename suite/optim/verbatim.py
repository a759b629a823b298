"""Loading an optimizer's state dict with its state tensors exactly as saved.

torch's ``Optimizer.load_state_dict`` casts each floating state tensor to its
parameter's dtype, and integer ones too when the parameter is floating point (it calls
``Optimizer._process_value_according_to_param_policy`` by class name, so a subclass
cannot change that policy): 8-bit codes would become floats, and absmax or float32
moments of a bfloat16 model would lose bits. :func:`load_state_verbatim` passes the
tensors through torch's loader wrapped, out of its reach, and copies them in afterwards:
dtype kept, moved to the parameter's device (``step`` stays where it was). The loaded
state is the saved one bit for bit and shares no memory with the state dict (as in
bitsandbytes); maps (state named ``*_qmap``) equal in device, dtype and values are again
one shared tensor.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["load_state_verbatim"]


def load_state_verbatim(
    optimizer: torch.optim.Optimizer, state_dict: dict, load: Callable[[dict], None]
) -> None:
    """Load ``state_dict`` into ``optimizer`` with ``load`` (torch's
    ``Optimizer.load_state_dict``, bound), its state tensors as saved (module docstring)."""
    hidden = {
        pid: {k: _Verbatim(v) if torch.is_tensor(v) else v for k, v in s.items()}
        for pid, s in state_dict["state"].items()
    }
    load({**state_dict, "state": hidden})
    maps: dict[tuple, Tensor] = {}
    for key, state in optimizer.state.items():
        device = key.device if torch.is_tensor(key) else None
        for name, value in state.items():
            if not isinstance(value, _Verbatim):
                continue
            tensor = value.tensor.detach()
            if name == "step" or device is None:
                state[name] = tensor.clone()
            elif name.endswith("_qmap"):
                ident = (device, tensor.dtype, tuple(tensor.tolist()))
                if ident not in maps:
                    maps[ident] = tensor.to(device, copy=True)
                state[name] = maps[ident]
            else:
                state[name] = tensor.to(device, copy=True)


class _Verbatim:
    """A state tensor in transit through ``Optimizer.load_state_dict``, which leaves
    anything that is not a tensor, dict or iterable as it is."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor
