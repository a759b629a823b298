"""Make sure a dataset's files are on disk and are the files we expect.

``ensure(spec, root)`` looks in ``<root>/<spec.folder>``; a missing file is
downloaded from the spec's URLs (a temporary file, checked, then renamed), and
every file is checked before it is used: against its published checksum, or,
for a ``.gz`` file, against the sha256 of its decompressed content. The second
check is what matters (the bytes a reader sees) and lets a recompressed copy of
the canonical file through (``gzip -9`` of the same content, as in offline
mirrors), while the canonical download still passes by its published md5.
Every failure is a :class:`DatasetError` with a one-line message that says what
was expected and where it was looked for.

Digests of large files are remembered (size, mtime, inode, ctime, digest) in the user cache,
never in the data folder, which may be shared and read-only.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .root import cache_root

# Files at least this large get a stamp (size, mtime, digest) after a successful
# check so the next run does not hash them again; smaller files hash in milliseconds.
STAMP_MIN_BYTES = 16 * 2**20
STAMP_FILE = "verified.json"  # in cache_root(): {path: [size, mtime_ns, ino, ctime_ns, ...]}
DOWNLOAD_TIMEOUT_S = 60


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt or unreadable. The message is one line."""


@dataclass(frozen=True)
class FileSpec:
    name: str  # path relative to the dataset folder
    checksum: str  # hex digest as published
    algo: str = "sha256"  # "md5" where md5 is what the source publishes
    content_sha256: str | None = None  # of the decompressed bytes, for a .gz file

    def expected(self) -> str:
        content = f" or content sha256 {self.content_sha256}" if self.content_sha256 else ""
        return f"{self.algo} {self.checksum}{content}"

    def describe(self) -> str:
        return f"{self.name} ({self.expected()})"


@dataclass(frozen=True)
class DatasetSpec:
    name: str  # e.g. "mnist"
    folder: str  # folder under the data root
    files: tuple[FileSpec, ...]
    urls: tuple[str, ...] = ()  # base URLs (mirrors, tried in order); the file name is appended


def file_digest(path: Path, algo: str, decompress: bool = False) -> str:
    """Hex digest of a file's bytes, or of its gzip-decompressed content."""
    h = hashlib.new(algo)
    with (gzip.open if decompress else open)(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stamps_path() -> Path:
    return cache_root() / STAMP_FILE


def _read_stamps() -> dict:
    try:
        return json.loads(_stamps_path().read_text())
    except (OSError, ValueError):
        return {}


def _write_stamp(path: Path, entry: list) -> None:
    """Best effort: an unwritable cache simply gets no stamp."""
    stamps = _read_stamps()
    stamps[str(path.resolve())] = entry
    try:
        _stamps_path().parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=_stamps_path().parent, prefix=STAMP_FILE, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(stamps, f)
        os.replace(tmp, _stamps_path())
    except OSError:
        pass


def _content_digest(path: Path) -> str | None:
    """sha256 of a gzip file's decompressed content; None if it does not decompress."""
    try:
        return file_digest(path, "sha256", decompress=True)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None


def verify(path: Path, spec: FileSpec) -> None:
    """Raise DatasetError unless ``path`` has the published checksum or, for a .gz
    file, the published sha256 of its decompressed content."""
    st = path.stat()
    # size and mtime can be forged (touch -d); the inode's ctime cannot: any write, rename or
    # swap of the file moves it, and then the file is hashed again.
    key = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
    key += [spec.algo, spec.checksum, spec.content_sha256]
    big = st.st_size >= STAMP_MIN_BYTES
    if big and _read_stamps().get(str(path.resolve())) == key:
        return
    actual = file_digest(path, spec.algo)
    if actual != spec.checksum:
        content = _content_digest(path) if spec.content_sha256 else None
        if content is None or content != spec.content_sha256:
            got = f"{spec.algo} {actual}" + (
                f", content sha256 {content or 'unreadable (not a complete gzip stream)'}"
                if spec.content_sha256
                else ""
            )
            raise DatasetError(
                f"{path}: checksum mismatch: expected {spec.expected()}, got {got}; "
                "the file was not used (delete it to download it again)"
            )
    if big:
        _write_stamp(path, key)


def download(url: str, dest: Path, spec: FileSpec) -> None:
    """Fetch ``url`` into a temporary file next to ``dest``, check it, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as r,
        ):
            for chunk in iter(lambda: r.read(2**20), b""):
                out.write(chunk)
        actual = file_digest(Path(tmp), spec.algo)
        if actual != spec.checksum:
            raise DatasetError(
                f"{url}: {spec.algo} checksum mismatch: expected {spec.checksum}, got {actual}; "
                "the download was discarded"
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def ensure(spec: DatasetSpec, root: Path) -> Path:
    """The dataset's folder, with every file of ``spec`` present and checked."""
    folder = Path(root) / spec.folder
    missing = []
    for f in spec.files:
        path = folder / f.name
        if path.is_file():
            verify(path, f)
        else:
            missing.append(f)
    if not missing:
        return folder
    expected = ", ".join(f.describe() for f in missing)
    where = f"dataset {spec.name!r}: expected {expected} in {folder}"
    hint = f"put them there, or point data.root / OPTBENCH_DATA at a folder holding {spec.folder}/"
    if not spec.urls:
        raise DatasetError(f"{where}; not found and no download URL is known; {hint}")
    for f in missing:
        errors = []
        for base in spec.urls:
            url = base + f.name
            try:
                download(url, folder / f.name, f)
                break
            except DatasetError as e:  # a bad download: try the next mirror
                errors.append(str(e))
            # Offline, HTTP 404, an unwritable folder, a malformed URL: try the next mirror.
            except (OSError, ValueError, http.client.HTTPException) as e:
                errors.append(f"{url}: {' '.join(str(e).split())}")
        else:
            raise DatasetError(
                f"{where}; not found and download failed ({'; '.join(errors)}); {hint}"
            )
    return folder
