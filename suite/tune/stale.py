"""Stale baselines: committed baseline records made by another suite or torch than the
candidate's runs (``env.json``: optbench and torch versions, the suite's git commit, the
device). They are flagged, never dropped, and the candidate's runs are always kept: the
comparison is still drawn, with one line saying what differs."""

from __future__ import annotations

import json
from pathlib import Path

KEYS = ("optbench", "torch")  # versions in env.json "packages"


def _fingerprint(env: dict) -> dict:
    packages = env.get("packages") or {}
    return {
        **{k: packages.get(k) for k in KEYS},
        "git_commit": env.get("git_commit"),
        "device": env.get("device"),
    }


def _first_env(root: Path) -> dict | None:
    for path in sorted(Path(root).rglob("reruns/*/env.json")):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return None


def stale_note(baselines: Path, candidate: Path) -> str | None:
    """One line naming what differs between the baselines' records and the candidate's."""
    base, mine = _first_env(baselines), _first_env(candidate)
    if base is None or mine is None:
        return None
    b, m = _fingerprint(base), _fingerprint(mine)
    diff = [f"{k} {b[k]} (baselines) vs {m[k]} (yours)" for k in b if b[k] != m[k]]
    if not diff:
        return None
    return (
        f"stale baselines: {baselines} were made with " + "; ".join(diff) + " "
        "(flagged, not dropped: rerun `make baselines` for a like-for-like comparison)"
    )
