"""Save and restore everything a resumed run needs to continue exactly as if never stopped.

A checkpoint holds the model, optimizer, scheduler and GradScaler state, every random
generator's state and the loop's ``track`` (step, times, losses, evaluations). It is written
atomically (a kill mid-save leaves the previous checkpoint) and loaded with
``torch.load(weights_only=True)``: tensors and plain types only, so a checkpoint someone else
made never runs code here.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from suite.record import read_jsonl, rewrite_jsonl, write_bytes
from suite.runner.faults import maybe_kill


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every generator's state as tensors and plain types, so that a checkpoint loads with
    ``torch.load(weights_only=True)`` (numpy's key array becomes a list of ints)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, parts: dict[str, Any], track: dict) -> None:
    """Write ``parts`` (name -> object with ``state_dict()``), the RNG states and ``track``.

    Serialised in memory, then written by write_bytes: a full disk is an OSError naming the
    file, not torch's "enforce fail at inline_container.cc", and the torn .tmp is freed."""
    tmp = Path(path).with_suffix(".tmp")
    buffer = io.BytesIO()
    state = {name: part.state_dict() for name, part in parts.items()}
    torch.save({**state, "rng": rng_state(), "track": track}, buffer)
    write_bytes(tmp, buffer.getbuffer())
    maybe_kill("checkpoint", track["step"])
    tmp.replace(path)  # atomic: a kill mid-save leaves the previous checkpoint intact


def restore(path: Path, parts: dict[str, Any], device: torch.device) -> dict:
    """Load ``parts`` and the RNG states from the checkpoint at ``path``; return its track."""
    # Tensors and plain types only: a checkpoint someone else made never runs code here.
    ckpt = torch.load(path, map_location=device, weights_only=True)
    for name, part in parts.items():
        part.load_state_dict(ckpt[name])
    set_rng_state(ckpt["rng"])
    return ckpt["track"]


def trim_metrics(metrics_path: Path, step: int, log: Callable[[dict], None]) -> None:
    """Drop the events a killed run logged after its last checkpoint (they are redone), and
    replay the kept ones to the mirrors (a killed W&B file may not hold them all)."""
    kept = (
        [e for e in read_jsonl(metrics_path) if e["step"] <= step] if metrics_path.exists() else []
    )
    rewrite_jsonl(metrics_path, kept)
    for event in kept:
        log(event)
