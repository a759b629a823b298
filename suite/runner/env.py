"""env.json: what produced a number (versions, device, commit, command)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "transformers",
    "tokenizers",
    "bitsandbytes",
    "hydra-core",
    "omegaconf",
    "wandb",
    "numpy",
    "pandas",
    "optbench",
)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """HEAD of the checkout the code runs from (``-dirty`` with uncommitted changes), else
    the commit ``git archive`` wrote into ``suite/COMMIT`` (export-subst: a frozen copy of
    the code, as the campaign runs from), else None."""
    repo = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    if sha:
        return f"{sha}{'-dirty' if dirty else ''}"
    archived = repo / "suite" / "COMMIT"
    text = archived.read_text().strip() if archived.is_file() else ""
    return text if len(text) == 40 and all(c in "0123456789abcdef" for c in text) else None


def environment(device: torch.device | None = None) -> dict:
    device = device or torch.device("cpu")
    return {
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "git_commit": git_commit(),
        "command": [sys.executable, *sys.argv],
    }
