"""In-house optimizers, written from the update math, and the registry of every entry."""

from suite.optim.adam import Adam, AdamW
from suite.optim.adam8bit import Adam8bit, AdamW8bit
from suite.optim.registry import REGISTRY, OptimSpec, get
from suite.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Adam8bit", "AdamW8bit", "REGISTRY", "OptimSpec", "get"]
