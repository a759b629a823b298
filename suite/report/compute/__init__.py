"""Compute: seeds -> groups, the statistics of claims, scoring, reach, choosing on val.
Imports only suite.report.read."""
