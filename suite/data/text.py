"""Language-modelling corpora as token streams: Tiny Shakespeare and WikiText-2 (raw).

A corpus is a (train, val) pair of strings: Tiny Shakespeare is split 90/10 by
characters as nanoGPT does; WikiText-2 uses its own train and validation files.
Tokenisation is either characters (the vocabulary of the whole text, as nanoGPT)
or a byte-level BPE trained on the train split with the ``tokenizers`` library.
The BPE and the encoded streams are cached next to the data (or in the user
cache when the data folder is read-only) under a name that hashes their settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from . import catalog
from .fetch import DatasetError, ensure
from .root import DEFAULT_ROOT, resolve_root

TEXT_DATASETS = ("tinyshakespeare", "wikitext2")
TOKENIZERS = ("char", "bpe")
WIKITEXT2_MEMBERS = {
    "train": "wikitext-2-raw/wiki.train.raw",
    "val": "wikitext-2-raw/wiki.valid.raw",
    "test": "wikitext-2-raw/wiki.test.raw",
}
BPE_MIN_FREQUENCY = 2


@dataclass(frozen=True)
class TokenData:
    name: str
    tokenizer: str  # "char" or "bpe"
    vocab_size: int
    train: torch.Tensor  # int64 (n_train,)
    val: torch.Tensor  # int64 (n_val,)
    # Characters in the val text: bits per char = loss * len(val) / val_chars / ln 2.
    val_chars: int

    def to(self, device: torch.device | str) -> TokenData:
        return TokenData(
            self.name,
            self.tokenizer,
            self.vocab_size,
            self.train.to(device),
            self.val.to(device),
            self.val_chars,
        )


def read_tinyshakespeare(root: str | os.PathLike | None = None) -> tuple[str, str, str]:
    """(train, val, checksum): the first 90% of the characters, the last 10%."""
    spec = catalog.SPECS["tinyshakespeare"]
    path = ensure(spec, resolve_root(root)) / spec.files[0].name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: unreadable text file ({e})") from None
    n = int(0.9 * len(text))
    return text[:n], text[n:], spec.files[0].checksum


def read_wikitext2(root: str | os.PathLike | None = None) -> tuple[str, str, str]:
    """(train, val, checksum): wiki.train.raw and wiki.valid.raw, read from the zip."""
    spec = catalog.SPECS["wikitext2"]
    path = ensure(spec, resolve_root(root)) / spec.files[0].name
    try:
        with zipfile.ZipFile(path) as z:
            train, val = (z.read(WIKITEXT2_MEMBERS[s]).decode("utf-8") for s in ("train", "val"))
    except (zipfile.BadZipFile, KeyError, OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: unreadable WikiText-2 archive ({e})") from None
    return train, val, spec.files[0].checksum


def _cache_dirs(root: Path, folder: str) -> list[Path]:
    return [root / folder, DEFAULT_ROOT.expanduser() / folder]


def _load_cached(dirs: list[Path], name: str):
    for d in dirs:
        if (d / name).is_file():
            return d / name
    return None


def _save_cached(dirs: list[Path], name: str, write) -> None:
    """Write through a temp file into the first writable folder; no cache if none is."""
    for d in dirs:
        tmp = None
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=d, prefix=name, suffix=".tmp")
            os.close(fd)
            write(tmp)
            os.replace(tmp, d / name)
            return
        except OSError:
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)


def _bpe(train: str, val: str, vocab_size: int, key: str, dirs: list[Path]):
    import tokenizers
    from tokenizers import ByteLevelBPETokenizer, Tokenizer

    settings = {
        "source": key,
        "vocab_size": vocab_size,
        "min_frequency": BPE_MIN_FREQUENCY,
        "kind": "bytelevel-bpe",
        "tokenizers": tokenizers.__version__,
    }
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    tok_name, ids_name = f"bpe-{h}.json", f"bpe-{h}-tokens.pt"
    tok_path, ids_path = _load_cached(dirs, tok_name), _load_cached(dirs, ids_name)
    if tok_path is not None and ids_path is not None:
        tok = Tokenizer.from_file(str(tok_path))
        ids = torch.load(ids_path)
        return tok.get_vocab_size(), ids["train"].long(), ids["val"].long()
    bpe = ByteLevelBPETokenizer()
    lines = train.splitlines(keepends=True)
    bpe.train_from_iterator(
        lines, vocab_size=vocab_size, min_frequency=BPE_MIN_FREQUENCY, show_progress=False
    )

    def encode(text: str) -> torch.Tensor:
        enc = bpe.encode_batch(text.splitlines(keepends=True))
        return torch.tensor([i for e in enc for i in e.ids], dtype=torch.int32)

    ids = {"train": encode(train), "val": encode(val)}
    _save_cached(dirs, tok_name, bpe.save)
    _save_cached(dirs, ids_name, lambda p: torch.save(ids, p))
    return bpe.get_vocab_size(), ids["train"].long(), ids["val"].long()


def load_text(
    name: str,
    root: str | os.PathLike | None = None,
    tokenizer: str = "char",
    vocab_size: int = 4096,
) -> TokenData:
    """A corpus by name, tokenised by characters or by a byte-level BPE of ``vocab_size``."""
    if name not in TEXT_DATASETS:
        raise ValueError(f"unknown text dataset {name!r}; valid: {', '.join(TEXT_DATASETS)}")
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; valid: {', '.join(TOKENIZERS)}")
    root = resolve_root(root)
    read = read_tinyshakespeare if name == "tinyshakespeare" else read_wikitext2
    train, val, checksum = read(root)
    if tokenizer == "char":
        chars = sorted(set(train) | set(val))  # as nanoGPT: the vocabulary of the whole text
        stoi = {c: i for i, c in enumerate(chars)}
        tr = torch.tensor([stoi[c] for c in train], dtype=torch.long)
        va = torch.tensor([stoi[c] for c in val], dtype=torch.long)
        return TokenData(name, "char", len(chars), tr, va, len(val))
    if vocab_size < 257:
        raise ValueError(f"vocab_size must be >= 257 for a byte-level BPE, got {vocab_size}")
    dirs = _cache_dirs(root, catalog.SPECS[name].folder)
    v, tr, va = _bpe(train, val, vocab_size, f"{name}:{checksum}", dirs)
    return TokenData(name, "bpe", v, tr, va, len(val))
