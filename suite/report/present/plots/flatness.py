"""The flatness check's plot: the reference's val curves at S and 2S, the budget, the target."""

from __future__ import annotations

import io


def flatness_plot(task: str, c: dict) -> bytes:
    """PNG bytes: each target seed's val curve, the budget S and the target
    (``c`` is :func:`suite.report.documents.flatness.check`'s result)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for seed, evals in c["curves"].items():
        ax.plot(
            [s for s, _ in evals], [v for _, v in evals], marker="o", ms=3, label=f"seed {seed}"
        )
    ax.axvline(c["budget"], color="grey", ls="--", lw=1, label="budget S (dashed: runs of 2S)")
    ax.axhline(c["target"], color="black", ls=":", lw=1, label="target")
    ax.set(xlabel="step", ylabel=c["metric"], title=f"{task}: reference AdamW, target seeds")
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
