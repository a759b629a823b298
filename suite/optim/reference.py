"""Guards around reference implementations whose behaviour differs from their name.

bitsandbytes' ``Adam8bit`` (0.50, CPU and CUDA kernels alike) applies weight decay
decoupled, ``p *= 1 - lr*wd``, i.e. as AdamW, not as L2 added to the gradient. A
comparison of "Adam with L2" against it would silently compare AdamW, so a non-zero
weight decay is refused here with a pointer to ``bnb_adamw8bit``.

bitsandbytes' paged optimizers keep their state in CUDA unified memory that the driver
pages to the host under memory pressure; on the CPU bitsandbytes silently falls back to
the unpaged optimizer, so a run called "paged" would not be. ``BnbPagedAdamW8bit``
refuses CPU parameters instead (the run entry point refuses ``device=cpu`` first,
from the entry's ``requires: cuda``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import bitsandbytes as bnb


class BnbAdam8bit(bnb.optim.Adam8bit):
    def __init__(self, params: Iterable, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        for group in self.param_groups:
            if group["weight_decay"]:
                raise ValueError(
                    f"invalid weight_decay for bnb_adam8bit: {group['weight_decay']} (bitsandbytes' "
                    "Adam8bit decays weights decoupled, as AdamW; use bnb_adamw8bit, or adam8bit for L2)"
                )


class BnbPagedAdamW8bit(bnb.optim.PagedAdamW8bit):
    def __init__(self, params: Iterable, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        devices = {p.device.type for g in self.param_groups for p in g["params"]}
        if "cpu" in devices:
            raise ValueError(
                "bnb_paged_adamw8bit needs CUDA parameters (paged state lives in CUDA unified "
                "memory; on CPU bitsandbytes would silently run unpaged): use bnb_adamw8bit"
            )
