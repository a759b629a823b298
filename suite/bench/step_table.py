"""The step benchmark's table as text (:mod:`suite.bench.step`): its header line (torch,
device, threads, the fused CPU kernels' build), the terminal table and a Markdown table."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pandas as pd
import torch

from suite.runner.env import cpu_model


def header(device: torch.device, contended: bool = False) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    fused = ""
    if device.type == "cpu":  # what the fused entries run on this CPU
        from suite.optim.kernels import cpu

        build = cpu.build_info()
        fused = (
            f" | fused CPU kernels: {build.get('isa', 'pure torch: ' + build.get('error', 'off'))}"
        )
    busy = f" | contended: a busy loop on core {max(os.sched_getaffinity(0))}" if contended else ""
    return (
        f"optimizer step benchmark | torch {torch.__version__} | {device.type}: {name} | "
        f"threads {torch.get_num_threads()}{fused}{busy} | "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    )


def format_table(table: pd.DataFrame) -> str:
    shown = table.copy()
    for col, fmt in [
        ("ms/step", "{:.2f}"),
        ("ms min", "{:.2f}"),
        ("ratio", "{:.3g}x"),
        ("state B/param", "{:.3f}"),
        ("GB/s", "{:.2f}"),
        ("% bw", "{:.0f}%"),
        ("ms contended", "{:.2f}"),
        ("slowdown", "{:.2f}x"),
    ]:
        if col in shown:
            shown[col] = shown[col].map(lambda v, f=fmt: "" if pd.isna(v) else f.format(v))
    shown["params"] = shown["params"].map("{:,}".format)
    if not shown["error"].astype(bool).any():
        shown = shown.drop(columns="error")
    return shown.fillna("").to_string(index=False)


def to_markdown(table: pd.DataFrame, title: str) -> str:
    """A plain Markdown table (no tabulate dependency)."""
    shown = table.astype(object).where(table.notna(), "")
    lines = [
        f"# {title}",
        "",
        "| " + " | ".join(shown.columns) + " |",
        "|" + "|".join("---" for _ in shown.columns) + "|",
    ]
    for row in shown.itertuples(index=False):
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
