"""Language-modelling corpora as token streams: Tiny Shakespeare, WikiText-2 (raw), Brown.

A corpus is a (train, val, test) triple of strings: Tiny Shakespeare by nanoGPT's
character split with val carved out of its train part (splits.py); WikiText-2
by its own train/valid/test files; Brown by a fixed split of its files (brown.py).
Tokenisation is either characters (the vocabulary of the whole text, as nanoGPT)
or a byte-level BPE trained on the train split only with the ``tokenizers``
library. The BPE and the encoded streams are cached in the user cache (never in
the data folder, which may be shared) under a name that hashes their settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from . import brown, catalog
from .fetch import DatasetError, ensure
from .root import cache_root, resolve_root
from .splits import nanogpt_split

TEXT_DATASETS = ("tinyshakespeare", "wikitext2", "brown")
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
    test: torch.Tensor  # int64 (n_test,)
    # Characters per split: bits per char = loss * len(tokens) / chars / ln 2.
    chars: dict[str, int]

    def to(self, device: torch.device | str) -> TokenData:
        return TokenData(
            self.name,
            self.tokenizer,
            self.vocab_size,
            self.train.to(device),
            self.val.to(device),
            self.test.to(device),
            self.chars,
        )


SPLITS = ("train", "val", "test")


def read_tinyshakespeare(root: str | os.PathLike | None = None) -> tuple[str, str, str, str]:
    """(train, val, test, checksum) by nanoGPT's split (splits.nanogpt_split)."""
    spec = catalog.SPECS["tinyshakespeare"]
    path = ensure(spec, resolve_root(root)) / spec.files[0].name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: unreadable text file ({e})") from None
    return (*nanogpt_split(text), spec.files[0].checksum)


def read_wikitext2(root: str | os.PathLike | None = None) -> tuple[str, str, str, str]:
    """(train, val, test, checksum): wiki.{train,valid,test}.raw, read from the zip."""
    spec = catalog.SPECS["wikitext2"]
    path = ensure(spec, resolve_root(root)) / spec.files[0].name
    try:
        with zipfile.ZipFile(path) as z:
            parts = [z.read(WIKITEXT2_MEMBERS[s]).decode("utf-8") for s in SPLITS]
    except (zipfile.BadZipFile, KeyError, OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: unreadable WikiText-2 archive ({e})") from None
    return (*parts, spec.files[0].checksum)


def read_brown(root: str | os.PathLike | None = None) -> tuple[str, str, str, str]:
    """(train, val, test, digest): the tag-stripped Brown corpus by its fixed file split."""
    folder = brown.ensure_brown(resolve_root(root))
    parts = brown.read_split(folder)
    return parts["train"], parts["val"], parts["test"], catalog.BROWN_DIGEST


READERS = {
    "tinyshakespeare": read_tinyshakespeare,
    "wikitext2": read_wikitext2,
    "brown": read_brown,
}


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


def _read_bpe_cache(tok_path: Path, ids_path: Path, tokenizer_cls):
    """(vocab size, ids per split) from the cache, or None if it is torn or foreign (then it
    is rebuilt, with one line naming the file). Tensors only: a cache never runs code."""
    try:
        tok = tokenizer_cls.from_file(str(tok_path))
        ids = torch.load(ids_path, weights_only=True)
        if not isinstance(ids, dict) or not all(
            isinstance(ids.get(s), torch.Tensor) and ids[s].dim() == 1 for s in SPLITS
        ):
            raise ValueError("not a dict of 1-D token tensors per split")
        if any(len(ids[s]) and int(ids[s].max()) >= tok.get_vocab_size() for s in SPLITS):
            raise ValueError("token ids beyond the tokenizer's vocabulary")
    except Exception as e:  # noqa: BLE001  any damage: the cache is rebuilt, never trusted
        reason = " ".join(str(e).split())[:160]
        print(f"warning: BPE cache {ids_path} or {tok_path} unreadable ({reason}); rebuilding it",
              file=sys.stderr, flush=True)  # fmt: skip
        return None
    return tok.get_vocab_size(), {s: ids[s].long() for s in SPLITS}


def _bpe(texts: dict[str, str], vocab_size: int, key: str, dirs: list[Path]):
    import tokenizers
    from tokenizers import ByteLevelBPETokenizer, Tokenizer

    settings = {
        "source": key,
        "vocab_size": vocab_size,
        "min_frequency": BPE_MIN_FREQUENCY,
        "kind": "bytelevel-bpe",
        "splits": list(SPLITS),
        "tokenizers": tokenizers.__version__,
    }
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    tok_name, ids_name = f"bpe-{h}.json", f"bpe-{h}-tokens.pt"
    tok_path, ids_path = _load_cached(dirs, tok_name), _load_cached(dirs, ids_name)
    if tok_path is not None and ids_path is not None:
        cached = _read_bpe_cache(tok_path, ids_path, Tokenizer)
        if cached is not None:
            return cached
    bpe = ByteLevelBPETokenizer()
    lines = texts["train"].splitlines(keepends=True)  # trained on the train split only
    bpe.train_from_iterator(
        lines, vocab_size=vocab_size, min_frequency=BPE_MIN_FREQUENCY, show_progress=False
    )

    def encode(text: str) -> torch.Tensor:
        enc = bpe.encode_batch(text.splitlines(keepends=True))
        return torch.tensor([i for e in enc for i in e.ids], dtype=torch.int32)

    ids = {s: encode(texts[s]) for s in SPLITS}
    _save_cached(dirs, tok_name, bpe.save)
    _save_cached(dirs, ids_name, lambda p: torch.save(ids, p))
    return bpe.get_vocab_size(), {s: ids[s].long() for s in SPLITS}


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
    if tokenizer == "bpe" and vocab_size < 257:
        raise ValueError(f"vocab_size must be >= 257 for a byte-level BPE, got {vocab_size}")
    root = resolve_root(root)
    *parts, checksum = READERS[name](root)
    texts = dict(zip(SPLITS, parts, strict=True))
    chars = {s: len(t) for s, t in texts.items()}
    if tokenizer == "char":
        # As nanoGPT: the vocabulary of the whole text.
        vocab = sorted(set().union(*texts.values()))
        stoi = {c: i for i, c in enumerate(vocab)}
        ids = {s: torch.tensor([stoi[c] for c in t], dtype=torch.long) for s, t in texts.items()}
        return TokenData(name, "char", len(vocab), ids["train"], ids["val"], ids["test"], chars)
    v, ids = _bpe(texts, vocab_size, f"{name}:{checksum}", [cache_root() / name])
    return TokenData(name, "bpe", v, ids["train"], ids["val"], ids["test"], chars)
