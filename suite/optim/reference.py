"""Guards around reference implementations whose behaviour differs from their name.

bitsandbytes' ``Adam8bit`` (0.50, CPU and CUDA kernels alike) applies weight decay
decoupled, ``p *= 1 - lr*wd``, i.e. as AdamW, not as L2 added to the gradient. A
comparison of "Adam with L2" against it would silently compare AdamW, so a non-zero
weight decay is refused here with a pointer to ``bnb_adamw8bit``.
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
