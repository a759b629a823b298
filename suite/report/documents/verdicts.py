"""``verdicts.md``: one line per workload, candidate against the reference, and how to read it
(the lines are :func:`suite.report.compute.verdicts.workload_verdicts`)."""

from __future__ import annotations

from pathlib import Path

from suite.record import atomic_write_text


def write_verdicts(lines: list[str], out: Path, candidate: str, reference: str) -> Path:
    """``verdicts.md`` in ``out`` (atomic), with how to read it."""
    text = (
        f"# {candidate} vs {reference}, per workload\n\n"
        "Paired by seed; effect = candidate - reference on the best val metric (oriented so "
        "that + is better), bootstrap 95 % interval; p: exact sign-flip test; Holm over the "
        "optimizers compared with the reference on a workload; TOST at the margin shown. "
        "Seconds are not compared (runs not interleaved with the reference: indicative only).\n\n"
        "```\n" + "\n".join(lines) + "\n```\n"
    )
    path = Path(out) / "verdicts.md"
    atomic_write_text(path, text)
    return path
