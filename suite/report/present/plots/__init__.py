"""Plots: PNGs from the frames of read and compute, in the house style (style.py)."""
