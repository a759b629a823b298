"""optbench: a benchmark and reproducibility suite for deep-learning optimizers."""

__version__ = "0.1.0"
