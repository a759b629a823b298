"""In-house optimizers, written from the update math, and the registry of every entry."""

from suite.optim import quiet

quiet.install()  # before anything imports bitsandbytes

from suite.optim.adam import Adam, AdamW  # noqa: E402
from suite.optim.adam8bit import Adam8bit, AdamW8bit  # noqa: E402
from suite.optim.registry import REGISTRY, OptimSpec, get  # noqa: E402
from suite.optim.sgd import SGD  # noqa: E402

__all__ = ["SGD", "Adam", "AdamW", "Adam8bit", "AdamW8bit", "REGISTRY", "OptimSpec", "get"]
