"""The run record: the contract between running and reporting.

One folder per run::

    <run_dir>/config.yaml     the resolved Hydra config
    <run_dir>/env.json        versions, device, git commit, command line
    <run_dir>/metrics.jsonl   one JSON object per logged event (see below)
    <run_dir>/summary.json    the run's outcome (see SUMMARY_KEYS)

Every whole-file write goes through a temporary file and ``os.replace`` so a
reader never sees half a file; ``metrics.jsonl`` is appended one line at a time
with a flush and fsync, and a reader ignores a torn last line. A run folder is
never reused: :func:`create_run_dir` refuses one that already holds a record.

metrics.jsonl events::

    {"event": "train", "step": 10, "loss": 2.1, "lr": 1e-3, "grad_norm": 0.9, "step_time_s": 0.01}
    {"event": "eval", "step": 100, "elapsed_s": 12.3, "train/acc": 0.9, "test/acc": 0.88, ...}
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

STATUSES = ("ok", "diverged", "failed", "interrupted", "running")
RECORD_FILES = ("config.yaml", "env.json", "metrics.jsonl", "summary.json")

# The keys every summary.json carries (values may be null where not measured).
SUMMARY_KEYS = (
    "schema",  # 1
    "status",  # one of STATUSES
    "task",  # task name, e.g. "cnn_digits"
    "optimizer",  # registry name, e.g. "adamw8bit"
    "impl",  # "inhouse" | "torch" | "bnb"
    "family",  # "sgd" | "adam" | "adamw"
    "state_bits",  # 32 | 8
    "hparams",  # {"lr": ..., "weight_decay": ..., ...} as passed to the optimizer
    "seed",
    "steps",  # steps completed
    "max_steps",
    "final",  # metrics of the last evaluation, {"train/acc": ..., "test/acc": ...}
    "best",  # best value of each metric over evaluations (direction-aware for the target)
    "final_train_loss",  # mean train loss over the last logged window
    "target",  # {"metric", "value", "direction"}
    "steps_to_target",  # first eval step that reached the target, or null
    "seconds_to_target",  # training seconds at that eval, or null
    "n_params",
    "optimizer_state_bytes",  # exact, summed over the optimizer's state tensors
    "peak_memory_bytes",
    "peak_memory_kind",  # "cuda_max_allocated" | "cpu_peak_rss"
    "median_step_time_s",
    "wall_seconds",
    "diverged_at_step",  # null unless status == "diverged"
    "diagnosis",  # one line from the debugging checklist, or null
    "error",  # one line for status "failed" or "interrupted" (signal, step), or null
    "wandb",  # {"mode": "offline"|"online"|"disabled", "dir": ..., "note": ...}
)


class RecordError(ValueError):
    """A run folder or record file that is not what it should be."""


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as strings so the file stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Records are readable as the umask allows (0644 under the usual 022), like any file the
# user writes: mkstemp alone would leave them 0600, unreadable to a report run by a colleague.
FILE_MODE = 0o666 & ~_umask()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # name the file a full disk stopped
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` (fsynced); on any error the partial file is removed, and a
    full disk is raised as OSError ENOSPC naming ``path``."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                if written == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        path.unlink(missing_ok=True)  # free what the torn file took
        if e.filename is None:
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(_clean(obj), indent=2, default=_json_default) + "\n")


def _jsonl_line(event: dict) -> str:
    return json.dumps(_clean(event), default=_json_default) + "\n"


def append_jsonl(path: Path, event: dict) -> None:
    """Append one event as one ``os.write`` of a complete line. A short write (a full
    disk) is cut back off, so the file never ends in a torn line, and raised as ENOSPC."""
    line = _jsonl_line(event).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, line)
        except OSError:
            os.ftruncate(fd, size)
            raise
        if written != len(line):
            os.ftruncate(fd, size)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        os.fsync(fd)
    finally:
        os.close(fd)


def rewrite_jsonl(path: Path, events: list[dict]) -> None:
    """Replace a JSONL file atomically with ``events`` (used when a resume drops the
    events a killed run logged after its last checkpoint)."""
    atomic_write_text(path, "".join(_jsonl_line(e) for e in events))


def create_run_dir(path: Path, resume: bool = False) -> Path:
    """Make a fresh run folder; an existing record is only reopened with ``resume``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RecordError(f"run path {path} exists and is not a folder")
    if (path / "summary.json").exists() and not resume:
        raise RecordError(f"run folder {path} already holds a record; refusing to overwrite it")
    path.mkdir(parents=True, exist_ok=True)
    return path


MAX_METRICS_BYTES = 512 * 2**20  # a 10^6-step run logged every step is ~200 MiB
MAX_SUMMARY_BYTES = 16 * 2**20


def read_jsonl(path: Path) -> list[dict]:
    """Events of a metrics.jsonl; a torn last line (killed mid-write) is ignored, any other
    malformed line is an error naming the file and line."""
    events = []
    lines = read_regular(path, MAX_METRICS_BYTES).split("\n")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) and not line.endswith("}"):  # torn final line
                break
            raise RecordError(f"{path}:{i}: not a JSON line ({e.msg})") from None
        if not isinstance(event, dict):
            raise RecordError(f"{path}:{i}: expected a JSON object, got {type(event).__name__}")
        events.append(event)
    return events


def read_summary(run_dir: Path) -> dict:
    """The summary of one run, validated; a clear RecordError otherwise."""
    path = Path(run_dir) / "summary.json"
    try:
        summary = json.loads(read_regular(path, MAX_SUMMARY_BYTES))
    except FileNotFoundError:
        raise RecordError(f"{path}: missing (run never finished or not a run folder)") from None
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(summary, dict):
        raise RecordError(f"{path}: expected a JSON object")
    missing = [k for k in SUMMARY_KEYS if k not in summary]
    if missing:
        raise RecordError(f"{path}: missing keys {missing}")
    if summary["status"] not in STATUSES:
        raise RecordError(f"{path}: status {summary['status']!r} not one of {STATUSES}")
    return summary


def is_run_dir(path: Path) -> bool:
    return Path(path, "summary.json").is_file() or Path(path, "config.yaml").is_file()


def read_regular(path: Path, limit: int) -> str:
    """The text of ``path`` if it is a regular file of at most ``limit`` bytes; RecordError
    otherwise (a FIFO or device named like a record would hang or never end a read)."""
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without a writer, unread
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise RecordError(f"{path}: not a regular file; not read")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise RecordError(f"{path}: larger than {limit >> 20} MiB; not read")
    return data.decode("utf-8", errors="replace")


def find_runs(root: Path, skipped: list[str] | None = None) -> list[Path]:
    """Every run folder under ``root`` (a folder holding config.yaml or summary.json).

    Symlinked folders are followed once: a link back to a folder already walked (a loop, or
    a second name for the same runs) is left out, and said in ``skipped`` if given."""
    root = Path(root)
    if not root.is_dir():
        raise RecordError(f"{root}: not a folder of run records")
    found, seen = set(), set()
    for here, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:
            dirs[:] = []
            if skipped is not None:
                skipped.append(f"{here}: a symlink to {real}, already read (loop or duplicate)")
            continue
        seen.add(real)
        dirs.sort()
        if "config.yaml" in files or "summary.json" in files:
            found.add(Path(here))
    return sorted(p for p in found if "wandb" not in p.parts and ".hydra" not in p.parts)
