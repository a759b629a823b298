"""The Brown corpus (Francis & Kucera 1964/1979) in NLTK's layout, as plain text.

Layout: a ``brown/`` folder with the 500 samples ``ca01`` .. ``cr09`` (one file
each, 15 genres a..r, listed in ``cats.txt``), plus README and CONTENTS. Every
token is written ``word/TAG``; each sentence is one line; blank lines separate
sentences. The reader keeps the words and drops the tags (the tag is what
follows the last ``/``), turns the corpus's `` and '' quote tokens into ``"``,
and joins a sentence's words with single spaces and sentences with newlines.

The split is by file, fixed and documented: within each genre, in file-name
order, the 9th of every 10 files goes to val and the 10th to test, the rest to
train, so each split spans every genre: train 414, val 45, test 41 files (961,698 /
104,720 / 94,774 words of the 1,161,192).

Checked as a whole: sha256 over the sorted file names of
``name.encode() + sha256(file bytes)`` for every file, the digest in
../shared/data/MANIFEST.txt. Offline it is read from ``<data root>/brown/``;
online, NLTK's ``brown.zip`` is downloaded and extracted there first.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from . import catalog
from .fetch import DOWNLOAD_TIMEOUT_S, DatasetError

SPLIT_EVERY = 10  # of each genre's files in order: index % 10 == 8 -> val, == 9 -> test


def folder_digest(folder: Path) -> tuple[str, int]:
    """(digest, number of files) of a folder's regular files, as MANIFEST.txt defines it."""
    h = hashlib.sha256()
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    for name in names:
        h.update(name.encode() + hashlib.sha256((folder / name).read_bytes()).digest())
    return h.hexdigest(), len(names)


def _check(folder: Path) -> None:
    digest, n = folder_digest(folder)
    if digest != catalog.BROWN_DIGEST:
        raise DatasetError(
            f"{folder}: Brown corpus content digest mismatch: expected {catalog.BROWN_DIGEST} "
            f"over {catalog.BROWN_FILES} files, got {digest} over {n}; the folder was not used "
            "(delete it to download it again)"
        )


def _download(root: Path) -> None:
    """NLTK's brown.zip (it holds a brown/ folder), extracted into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix="brown", suffix=".zip.part")
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(catalog.BROWN_URL, timeout=DOWNLOAD_TIMEOUT_S) as r,
        ):
            for chunk in iter(lambda: r.read(2**20), b""):
                out.write(chunk)
        with zipfile.ZipFile(tmp) as z:
            z.extractall(root)
    finally:
        os.remove(tmp)


def ensure_brown(root: Path) -> Path:
    """The checked ``brown/`` folder under ``root``, downloaded first if it is missing."""
    folder = Path(root) / "brown"
    if not folder.is_dir():
        try:
            _download(Path(root))
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise DatasetError(
                f"dataset 'brown': expected {catalog.BROWN_FILES} files (content digest "
                f"{catalog.BROWN_DIGEST}) in {folder}; not found and download failed "
                f"({catalog.BROWN_URL}: {' '.join(str(e).split())}); put NLTK's corpora/brown "
                "there, or point data.root / OPTBENCH_DATA at a folder holding brown/"
            ) from None
    _check(folder)
    return folder


def strip_tags(line: str) -> str:
    """One tagged sentence as plain text: ``The/at jury/nn ./.`` -> ``The jury .``."""
    words = (tok.rsplit("/", 1)[0] for tok in line.split())
    return " ".join('"' if w in ("``", "''") else w for w in words)


def genres(folder: Path) -> dict[str, str]:
    """File name -> genre, from cats.txt."""
    out = {}
    for line in (folder / "cats.txt").read_text().splitlines():
        if line.strip():
            name, genre = line.split()
            out[name] = genre
    return out


def split_files(folder: Path) -> dict[str, list[str]]:
    """The fixed train/val/test split of the sample files (see the module docstring)."""
    by_genre: dict[str, list[str]] = {}
    for name, genre in sorted(genres(folder).items()):
        by_genre.setdefault(genre, []).append(name)
    split = {"train": [], "val": [], "test": []}
    for names in by_genre.values():
        for i, name in enumerate(names):
            k = i % SPLIT_EVERY
            split[
                "val" if k == SPLIT_EVERY - 2 else "test" if k == SPLIT_EVERY - 1 else "train"
            ].append(name)
    return {k: sorted(v) for k, v in split.items()}


def read_file(path: Path) -> str:
    """A sample file as plain text, one sentence per line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: unreadable Brown corpus file ({e})") from None
    return "".join(strip_tags(line) + "\n" for line in lines if line.strip())


def read_split(folder: Path) -> dict[str, str]:
    """Plain text of each split: its files' texts concatenated in file-name order."""
    return {
        split: "".join(read_file(folder / name) for name in names)
        for split, names in split_files(folder).items()
    }
