"""The run record: the contract between running and reporting.

One folder per run::

    <run_dir>/config.yaml     the resolved Hydra config
    <run_dir>/env.json        versions, device, git commit, command line
    <run_dir>/metrics.jsonl   one JSON object per logged event (see below)
    <run_dir>/summary.json    the run's outcome (see Summary)

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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

STATUSES = ("ok", "diverged", "failed", "interrupted", "running")
RECORD_FILES = ("config.yaml", "env.json", "metrics.jsonl", "summary.json")


@dataclass
class Summary:
    """The outcome of one run: what ``run.py`` writes to summary.json and report and tune read.

    Every summary.json ever written carries the keys in :data:`SUMMARY_KEYS`; the other
    fields were added later or are written only for some runs, so a record without them still
    reads. A field is null where it was not measured (a failed run has no ``final``).
    """

    # what was run: known before the first step
    schema: int  # 1
    status: str  # one of STATUSES
    task: str  # task name, e.g. "cnn_digits"
    optimizer: str  # registry name, e.g. "adamw8bit"
    impl: str  # "inhouse" | "torch" | "bnb" | "custom"
    family: str | None  # "sgd" | "adam" | "adamw"
    hparams: dict  # {"lr": ..., "weight_decay": ..., ...} as passed to the optimizer
    seed: int
    max_steps: int
    target: dict  # {"metric", "value", "direction"}
    state_bits_claimed: int | None = None  # what the entry says its state holds
    optimizer_entry: dict | None = None  # {"name", "distribution", "version"}
    constructor: dict | None = None  # every argument the optimizer was built with
    world_size: int | None = None  # data-parallel processes
    # what happened: measured by the loop
    state_bits: int | None = None  # 32 | 8, measured from the state tensors after training
    steps: int | None = None  # steps completed
    final: dict | None = None  # metrics of the last evaluation, {"test/acc": ...}
    best: dict | None = None  # best value of each metric over evaluations (direction-aware)
    final_train_loss: float | None = None  # mean train loss over the last logged window
    steps_to_target: int | None = None  # first eval step that reached the target
    seconds_to_target: float | None = None  # training seconds at that eval
    n_params: int | None = None
    optimizer_state_bytes: int | None = None  # exact, summed over the state tensors
    tensor_bytes: dict | None = None  # parameter and state bytes by kind
    optimizer_class: str | None = None  # the class built, module.Class
    state_dtypes: dict | None = None  # dtype of each state entry, measured
    telemetry: dict | None = None  # step-time percentiles and telemetry window
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None  # "cuda_max_allocated" | "cpu_peak_rss"
    median_step_time_s: float | None = None
    diverged_at_step: int | None = None  # null unless status == "diverged"
    diverged_layer: str | None = None  # the first parameter that went non-finite
    diagnosis: str | None = None  # one line from the debugging checklist
    error: str | None = None  # one line for status "failed" or "interrupted" (signal, step)
    signal: str | None = None  # interrupted runs: the signal's name
    requeue: bool | None = None  # interrupted runs: handed to submitit for a requeue
    # written by run.py around the loop
    wall_seconds: float | None = None
    state_bits_claim: str | None = None  # one line when measured state bits differ from claimed
    wandb: dict | None = None  # {"mode": "offline"|"online"|"disabled", "dir": ..., "note": ...}
    extra: dict = field(default_factory=dict)  # keys of a newer writer, kept as read

    def to_dict(self) -> dict:
        """The JSON object written to summary.json (``extra`` keys at top level)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, raw: dict, where: str = "summary") -> Summary:
        """A Summary from a summary.json object; RecordError naming ``where`` if it is not one."""
        if not isinstance(raw, dict):
            raise RecordError(f"{where}: expected a JSON object")
        missing = [k for k in SUMMARY_KEYS if k not in raw]
        if missing:
            raise RecordError(f"{where}: missing keys {missing}")
        if raw["status"] not in STATUSES:
            raise RecordError(f"{where}: status {raw['status']!r} not one of {STATUSES}")
        known = {k: v for k, v in raw.items() if k in SUMMARY_FIELDS and k != "extra"}
        extra = {k: v for k, v in raw.items() if k not in known}
        return cls(**known, extra=extra)


# Every key a run writes, and the keys every summary.json carries (required to read one).
SUMMARY_FIELDS = tuple(f.name for f in fields(Summary) if f.name != "extra")
SUMMARY_KEYS = (
    *("schema", "status", "task", "optimizer", "impl", "family", "state_bits", "hparams"),
    *("seed", "steps", "max_steps", "final", "best", "final_train_loss", "target"),
    *("steps_to_target", "seconds_to_target", "n_params", "optimizer_state_bytes"),
    *("peak_memory_bytes", "peak_memory_kind", "median_step_time_s", "wall_seconds"),
    *("diverged_at_step", "diagnosis", "error", "wandb"),
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
            if written != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        except OSError as e:  # os.write and fsync name no file: the error line must say which
            os.ftruncate(fd, size)
            raise OSError(e.errno, e.strerror, str(path)) from e
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
    """The summary of one run as written, checked against :class:`Summary`; a clear
    RecordError otherwise. ``Summary.from_dict`` of it gives the typed record."""
    path = Path(run_dir) / "summary.json"
    try:
        summary = read_json(path)
    except FileNotFoundError:
        raise RecordError(f"{path}: missing (run never finished or not a run folder)") from None
    Summary.from_dict(summary, str(path))  # the contract: required keys and a known status
    return summary  # as written: an older record lacks the later optional keys


def read_json(path: Path, limit: int = MAX_SUMMARY_BYTES) -> Any:
    """The JSON value in ``path``, read as every record is (:func:`read_regular`: a regular
    file of at most ``limit`` bytes); RecordError naming the file where it is not JSON."""
    try:
        return json.loads(read_regular(path, limit))
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


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
