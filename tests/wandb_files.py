"""Read a real ``.wandb`` file (what ``wandb sync`` uploads) without a server.

wandb 0.31 ships no Python reader, so this follows its on-disk format: a 7-byte header
(``:W&B``, magic 0xBEE1, version 0), then a LevelDB-style log of 32 KiB blocks whose
records (crc32, length, type: full/first/middle/last) hold ``wandb_internal_pb2.Record``
protobufs, the same messages wandb-core writes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[pb.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a .wandb file"
    pos, parts = 7, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # the block's zero padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if (length, kind) == (0, 0):
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (FULL, FIRST):
            parts = b""
        parts += chunk
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(parts)
            yield record


def run_id(path: Path) -> str | None:
    """The run id in the file's run record; None for a file a SIGKILL left as a bare header."""
    return next((r.run.run_id for r in records(path) if r.WhichOneof("record_type") == "run"), None)


def history_steps(path: Path) -> list[int]:
    """The ``_step`` of every history row in the file, in order."""
    steps = []
    for r in records(path):
        if r.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): i.value_json for i in r.history.item}
            steps.append(int(items["_step"]))
    return steps
