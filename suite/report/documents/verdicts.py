"""``verdicts.md``: one line per workload, candidate against the reference, and how to read it
(the lines are :func:`suite.report.compute.verdicts.workload_verdicts`)."""

from __future__ import annotations

from pathlib import Path

from suite.record import atomic_write_text


def write_verdicts(
    lines: list[str], out: Path, candidate: str, reference: str, notes: list[str] = ()
) -> Path:
    """``verdicts.md`` in ``out`` (atomic), with how to read it."""
    text = (
        f"# {candidate} vs {reference}, per workload\n\n"
        "How to read this: one line per workload. The word is the claim: better / worse "
        "(Holm p < 0.05 and the interval excludes 0), equivalent within ±margin (TOST p < "
        "0.05 at the margin stated before the data: 0.005 accuracy, 0.01 nats), else "
        "inconclusive with the seeds that would likely decide it. Effect = candidate - "
        f"{reference} on the best val metric, paired by seed with the {reference} control "
        "rerun in this invocation (same code, same seeds, the same stretch of time; the notes "
        "say whether the control reproduces the committed baseline), oriented so that + is "
        "better, with its bootstrap 95 % interval; p: exact "
        "sign-flip test (with n seeds it cannot go below 2/2^n: 0.25 at 3); Holm over the optimizers compared "
        "with the reference on a workload. Reach: runs that reached the committed target, "
        "k/n (a miss is never a time at the budget). Seconds and the step-time ratio come "
        f"only from the {reference} control rerun in this invocation, interleaved with the "
        "candidate at the same seeds (candidate, control, candidate, ...; see "
        "control/<task>/timeline.json); the committed baselines' seconds come from other "
        "days and loads and are indicative only.\n\n"
        "```\n" + "\n".join(lines) + "\n```\n"
    )
    if notes:
        text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    path = Path(out) / "verdicts.md"
    atomic_write_text(path, text)
    return path
