"""Read: run records (through suite.record) -> validated rows, frames, curves and targets.
Imports nothing else of the report."""
