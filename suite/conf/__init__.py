"""The Hydra config tree, shipped in the package and found as ``pkg://suite.conf``."""
