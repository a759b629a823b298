"""What an optimizer holds, for every implementation: its moments as float32 tensors.

The one place that decodes optimizer state (in-house 8-bit codes, bitsandbytes'
``state1``/``state2``, torchao's quantized subclasses), for telemetry and for the run
doctor; nothing else reads codes, absmax or maps.

``first_moment(state, p)`` is :math:`m` (``exp_avg``; bitsandbytes' ``state1``),
``second_moment(state, p)`` is :math:`v` (``exp_avg_sq``; ``state2``), each float32 of
``p``'s shape, or None where the optimizer keeps no such moment (SGD, Lion's v, ...).
``is_8bit(state)`` says whether the moments are uint8 codes. ``state_bytes(optimizer)``
is what the state costs: exact bytes, each storage once; ``tensor_bytes`` adds the
parameters and their gradients.
"""

from __future__ import annotations

import torch

# (codes, absmax, map) of m and v, per layout
_INHOUSE = (("exp_avg", "exp_avg_absmax", "exp_avg_qmap"),
            ("exp_avg_sq", "exp_avg_sq_absmax", "exp_avg_sq_qmap"))  # fmt: skip
_BNB = (("state1", "absmax1", "qmap1"), ("state2", "absmax2", "qmap2"))


def _plain(t: torch.Tensor) -> torch.Tensor:
    """A plain float32 copy of a state tensor (torchao's quantized subclasses decoded)."""
    if type(t) is not torch.Tensor and hasattr(t, "dequantize"):
        t = t.dequantize()
    return t.float()


def bnb_blocksize(numel: int, blocks: int) -> int:
    """bitsandbytes' block size from the number of absmax values it keeps."""
    return next(
        (b for b in (2**k for k in range(6, 13)) if -(-numel // b) == blocks),
        max(1, numel // blocks),
    )


def _moment(state: dict, p: torch.Tensor, which: int) -> torch.Tensor | None:
    for layout in (_INHOUSE, _BNB):
        codes_key, absmax_key, map_key = layout[which]
        t = state.get(codes_key)
        if not torch.is_tensor(t):
            continue
        if t.dtype == torch.uint8:
            if absmax_key not in state or map_key not in state:
                return None
            absmax, qmap = state[absmax_key], state[map_key]
            if layout is _BNB:  # bitsandbytes decodes its own state, at its block size
                import bitsandbytes.functional as F

                size = bnb_blocksize(t.numel(), absmax.numel())
                t = F.dequantize_blockwise(t, absmax=absmax, code=qmap, blocksize=size)
            else:
                from suite.optim.quant import dequantize_blockwise

                t = dequantize_blockwise(t, absmax, qmap)
        t = _plain(t)
        return t if t.shape == p.shape else None
    return None


def first_moment(state: dict, p: torch.Tensor) -> torch.Tensor | None:
    """:math:`m` of ``p`` as float32 of p's shape, or None (module docstring)."""
    return _moment(state, p, 0)


def second_moment(state: dict, p: torch.Tensor) -> torch.Tensor | None:
    """:math:`v` of ``p`` as float32 of p's shape, or None (module docstring)."""
    return _moment(state, p, 1)


def is_8bit(state: dict) -> bool:
    """Whether the moments of this parameter are kept as uint8 codes."""
    return any(
        torch.is_tensor(state.get(k)) and state[k].dtype == torch.uint8
        for k in ("exp_avg_sq", "state2")
    )


def inner_tensors(t: torch.Tensor) -> list[torch.Tensor]:
    """The plain tensors holding a tensor's bytes: a tensor subclass (torchao's quantized
    optimizer state: codes + scales) flattened through ``__tensor_flatten__``; else itself."""
    if type(t) is not torch.Tensor and hasattr(t, "__tensor_flatten__"):
        names, _ = t.__tensor_flatten__()
        return [x for n in names for x in inner_tensors(getattr(t, n))]
    return [t]


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Exact bytes held in the optimizer's state: numel * element_size over every tensor in
    ``optimizer.state``, also inside lists, tuples and dicts (moments, 8-bit codes, absmax, quantization maps, step; a tensor
    subclass by its inner tensors), each storage counted once (an 8-bit optimizer may share
    one quantization map across params)."""
    seen: dict[tuple, int] = {}
    for per_param in optimizer.state.values():
        for value in _state_tensors(per_param):
            for t in inner_tensors(value):
                key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset())
                seen[key] = max(seen.get(key, 0), t.numel() * t.element_size())
    return sum(seen.values())


def _state_tensors(value: object) -> list[torch.Tensor]:
    """The tensors in one parameter's state, through lists, tuples and dicts (SOAP keeps its
    preconditioners as lists of matrices: ``GG``, ``Q``)."""
    if torch.is_tensor(value):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [t for v in value for t in _state_tensors(v)]
    return []


def tensor_bytes(params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the parameters, their gradients and the optimizer state: sum over params of
    numel * element_size, twice for a parameter that takes a gradient (the loop frees
    gradients between steps, so they are counted at their parameter's size), plus
    :func:`state_bytes`."""
    return sum(
        p.numel() * p.element_size() * (2 if p.requires_grad else 1) for p in params
    ) + state_bytes(optimizer)
