"""Silence exactly one bitsandbytes warning that no optimizer run can act on.

On a CPU with AVX512-BF16, importing bitsandbytes (0.49+) runs
``bitsandbytes/backends/cpu/ops.py``, which tries ``from kernels import get_kernel`` and
``get_kernel("kernels-community/quantization-bitsandbytes")``: the Hugging Face
``kernels`` package downloading a compiled 4-bit GEMM from the Hub at import time. It
serves only ``gemv_4bit`` (4-bit quantized Linear layers, QLoRA-style inference), never an
optimizer, and needs the network, so installing ``kernels`` would only turn the warning
into a download attempt. Without it bitsandbytes falls back to its own CPU kernel and logs
``Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'``
on the logger ``bitsandbytes.backends.cpu.ops``. This filter drops that record and no other.
"""

from __future__ import annotations

import logging

LOGGER = "bitsandbytes.backends.cpu.ops"
MESSAGE = "Failed to load CPU gemm_4bit_forward from kernels-community"


class _DropKernelsWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(MESSAGE)


def install() -> None:
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(f, _DropKernelsWarning) for f in logger.filters):
        logger.addFilter(_DropKernelsWarning())
