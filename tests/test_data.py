"""Data layer: root resolution, checksums and downloads, readers, (seed, step) batches.

Readers are fed small files in the real formats, written here into tmp dirs;
their checksums are computed here, so only the catalogue's checksum values
are swapped in tests, never the code under test.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from suite.data import (
    DatasetError,
    DatasetSpec,
    FileSpec,
    catalog,
    ensure,
    fetch,
    load_images,
    load_text,
    splits,
)
from suite.data.batches import (
    epoch_indices,
    fixed_windows,
    generator,
    random_crop,
    random_hflip,
    random_windows,
)
from suite.data.images import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, load_digits, read_idx
from suite.data.root import ENV_VAR, resolve_root

REPO = Path(__file__).resolve().parents[1]
OFFLINE = ("file:///nonexistent-optbench-mirror/",)  # any fetch from here fails at once


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# --- root ---------------------------------------------------------------------------------


def test_root_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_root() == tmp_path / "home/.cache/optbench"
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    assert resolve_root(None) == tmp_path / "env"
    assert resolve_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_root(str(tmp_path / "explicit")) == tmp_path / "explicit"


# --- ensure: checksums, downloads, offline ------------------------------------------------


def test_ensure_checks_present_files(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds/a.bin").write_bytes(b"hello")
    good = DatasetSpec("ds", "ds", (FileSpec("a.bin", md5(tmp_path / "ds/a.bin"), "md5"),))
    assert ensure(good, tmp_path) == tmp_path / "ds"
    bad = DatasetSpec("ds", "ds", (FileSpec("a.bin", "0" * 32, "md5"),))
    with pytest.raises(DatasetError) as e:
        ensure(bad, tmp_path)
    msg = one_line(e)
    assert str(tmp_path / "ds/a.bin") in msg and "md5" in msg
    assert "0" * 32 in msg and md5(tmp_path / "ds/a.bin") in msg


def test_ensure_downloads_from_url_then_verifies(tmp_path):
    src = tmp_path / "mirror"
    src.mkdir()
    (src / "a.txt").write_text("some data")
    spec = DatasetSpec(
        "ds", "ds", (FileSpec("a.txt", sha256(src / "a.txt")),), (src.as_uri() + "/",)
    )
    folder = ensure(spec, tmp_path / "root")
    assert (folder / "a.txt").read_text() == "some data"
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt"]  # no temp file left


def test_download_with_wrong_checksum_is_discarded(tmp_path):
    src = tmp_path / "mirror"
    src.mkdir()
    (src / "a.txt").write_text("tampered")
    spec = DatasetSpec("ds", "ds", (FileSpec("a.txt", "f" * 64),), (src.as_uri() + "/",))
    with pytest.raises(DatasetError) as e:
        ensure(spec, tmp_path / "root")
    msg = one_line(e)
    assert "f" * 64 in msg and sha256(src / "a.txt") in msg
    assert list((tmp_path / "root/ds").iterdir()) == []


def test_missing_dataset_offline_names_everything(monkeypatch, tmp_path):
    monkeypatch.setitem(catalog.SPECS, "mnist", replace(catalog.MNIST, urls=OFFLINE))
    with pytest.raises(DatasetError) as e:
        load_images("mnist", tmp_path)
    msg = one_line(e)
    assert "'mnist'" in msg and str(tmp_path / "mnist") in msg
    for f in catalog.MNIST.files:  # every expected file with its published md5
        assert f.name in msg and f"md5 {f.checksum}" in msg
    assert "nonexistent-optbench-mirror" in msg


def test_missing_text_dataset_offline(monkeypatch, tmp_path):
    monkeypatch.setitem(catalog.SPECS, "wikitext2", replace(catalog.WIKITEXT2, urls=OFFLINE))
    with pytest.raises(DatasetError) as e:
        load_text("wikitext2", tmp_path, tokenizer="bpe")
    msg = one_line(e)
    assert "wikitext-2-raw-v1.zip" in msg and catalog.WIKITEXT2.files[0].checksum in msg


def test_verified_stamp_skips_rehashing(monkeypatch, tmp_path):
    monkeypatch.setattr(fetch, "STAMP_MIN_BYTES", 0)
    monkeypatch.setenv("OPTBENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "ds").mkdir()
    path = tmp_path / "ds/a.bin"
    path.write_bytes(b"x" * 100)
    spec = DatasetSpec("ds", "ds", (FileSpec("a.bin", sha256(path)),))
    ensure(spec, tmp_path)
    # The stamp lives in the user cache, never in the (possibly shared) data folder.
    assert (tmp_path / "cache" / fetch.STAMP_FILE).is_file()
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["a.bin"]

    def no_hashing(*a):
        raise AssertionError("hashed again")

    monkeypatch.setattr(fetch, "file_digest", no_hashing)
    ensure(spec, tmp_path)  # stamp matches: no hashing
    path.write_bytes(b"y" * 101)  # changed file: stamp no longer matches, so it is hashed
    with pytest.raises(AssertionError, match="hashed again"):
        ensure(spec, tmp_path)


# --- IDX (MNIST / Fashion-MNIST) ----------------------------------------------------------


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n_train: int = 12, n_test: int = 5) -> dict:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(idx_bytes(x, IDX_IMAGES_MAGIC))
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(idx_bytes(y, IDX_LABELS_MAGIC))
        arrays[prefix] = (x, y)
    return arrays


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_reader(monkeypatch, tmp_path, name):
    spec = catalog.SPECS[name]
    arrays = write_mnist(tmp_path / spec.folder)
    files = tuple(replace(f, checksum=md5(tmp_path / spec.folder / f.name)) for f in spec.files)
    monkeypatch.setitem(catalog.SPECS, name, replace(spec, files=files, urls=OFFLINE))
    monkeypatch.setitem(splits.VAL_SIZE, name, 3)
    d = load_images(name, tmp_path)
    assert d.train_x.shape == (9, 1, 28, 28) and d.val_x.shape == (3, 1, 28, 28)
    assert d.test_x.shape == (5, 1, 28, 28)
    assert d.train_x.dtype == torch.uint8 and d.train_y.dtype == torch.int64
    tr, va = splits.holdout(12, 3)
    assert torch.equal(d.train_x[:, 0], torch.from_numpy(arrays["train"][0][tr.numpy()]))
    assert torch.equal(d.val_y, torch.from_numpy(arrays["train"][1][va.numpy()]).long())
    assert torch.equal(d.test_y, torch.from_numpy(arrays["t10k"][1]).long())
    assert len(d.mean) == len(d.std) == 1


def test_idx_rejects_truncated_and_malformed(tmp_path):
    x = np.zeros((3, 28, 28), np.uint8)
    good = gzip.compress(idx_bytes(x, IDX_IMAGES_MAGIC))
    cases = {
        "cut.gz": good[: len(good) // 2],  # truncated gzip stream
        "short.gz": gzip.compress(idx_bytes(x, IDX_IMAGES_MAGIC)[:-10]),  # valid gzip, short body
        "magic.gz": gzip.compress(idx_bytes(x, IDX_LABELS_MAGIC)),  # a labels file
        "tiny.gz": gzip.compress(b"\x00\x00"),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DatasetError) as e:
            read_idx(tmp_path / name, IDX_IMAGES_MAGIC)
        assert str(tmp_path / name) in one_line(e), name


# --- CIFAR-10 -----------------------------------------------------------------------------


def cifar_batch(n: int, seed: int) -> tuple[bytes, np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    return pickle.dumps({b"data": data, b"labels": labels, b"batch_label": b"x"}), data, labels


def cifar_files() -> dict[str, tuple[bytes, np.ndarray, list[int]]]:
    names = [*catalog.CIFAR10_BATCHES, "test_batch"]
    return {n: cifar_batch(4 if n != "test_batch" else 3, i) for i, n in enumerate(names)}


def test_cifar10_from_extracted_folder(monkeypatch, tmp_path):
    batches = cifar_files()
    folder = tmp_path / "cifar10/cifar-10-batches-py"
    folder.mkdir(parents=True)
    for n, (raw, _, _) in batches.items():
        (folder / n).write_bytes(raw)
    files = tuple(
        replace(f, checksum=md5(tmp_path / "cifar10" / f.name))
        for f in catalog.CIFAR10_EXTRACTED.files
    )
    monkeypatch.setattr(
        catalog, "CIFAR10_EXTRACTED", replace(catalog.CIFAR10_EXTRACTED, files=files)
    )
    monkeypatch.setitem(splits.VAL_SIZE, "cifar10", 4)
    d = load_images("cifar10", tmp_path)
    assert d.train_x.shape == (16, 3, 32, 32) and d.val_x.shape == (4, 3, 32, 32)
    assert d.test_x.shape == (3, 3, 32, 32)
    raw = np.concatenate([batches[n][1] for n in catalog.CIFAR10_BATCHES]).reshape(20, 3, 32, 32)
    tr, _ = splits.holdout(20, 4)
    assert torch.equal(d.train_x, torch.from_numpy(raw[tr.numpy()]))
    assert d.test_y.tolist() == batches["test_batch"][2]
    assert len(d.mean) == 3

    (folder / "data_batch_3").write_bytes(batches["data_batch_3"][0][:-7])  # truncated
    with pytest.raises(DatasetError) as e:  # caught by its md5 before it is parsed
        load_images("cifar10", tmp_path)
    assert str(folder / "data_batch_3") in one_line(e)


def test_cifar10_from_tar_gz_and_truncated_batch(monkeypatch, tmp_path):
    def write_tar(batches) -> Path:
        path = tmp_path / "cifar10/cifar-10-python.tar.gz"
        path.parent.mkdir(exist_ok=True)
        with tarfile.open(path, "w:gz") as tar:
            for n, (raw, _, _) in batches.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{n}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
        spec = replace(
            catalog.CIFAR10, files=(replace(catalog.CIFAR10.files[0], checksum=md5(path)),)
        )
        monkeypatch.setitem(catalog.SPECS, "cifar10", replace(spec, urls=OFFLINE))
        return path

    batches = cifar_files()
    write_tar(batches)
    monkeypatch.setitem(splits.VAL_SIZE, "cifar10", 4)
    d = load_images("cifar10", tmp_path)
    labels = sum((batches[n][2] for n in catalog.CIFAR10_BATCHES), [])
    tr, va = splits.holdout(20, 4)
    assert d.train_x.shape == (16, 3, 32, 32)
    assert d.train_y.tolist() == [labels[i] for i in tr] and d.val_y.tolist() == [
        labels[i] for i in va
    ]

    batches["data_batch_2"] = (batches["data_batch_2"][0][:100],) + batches["data_batch_2"][1:]
    path = write_tar(batches)
    with pytest.raises(DatasetError) as e:
        load_images("cifar10", tmp_path)
    assert f"{path}:data_batch_2" in one_line(e)


# --- digits -------------------------------------------------------------------------------


def test_digits_split_is_fixed_and_stratified():
    a, b = load_digits(), load_digits()
    assert a.train_x.shape == (1077, 1, 8, 8) and a.val_x.shape == (360, 1, 8, 8)
    assert a.test_x.shape == (360, 1, 8, 8)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert int(a.train_x.max()) == 255
    counts = torch.bincount(a.test_y, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 360 / 10 classes, stratified


# --- text ---------------------------------------------------------------------------------


def shared_tinyshakespeare() -> Path | None:
    for root in (os.environ.get(ENV_VAR), REPO.parent / "shared/data"):
        if root and (Path(root) / "tinyshakespeare/input.txt").is_file():
            return Path(root)
    return None


@pytest.mark.skipif(
    shared_tinyshakespeare() is None,
    reason=f"Tiny Shakespeare not found under ${ENV_VAR} or ../shared/data",
)
def test_real_tinyshakespeare_loads_with_checksum():
    d = load_text("tinyshakespeare", shared_tinyshakespeare())
    assert d.vocab_size == 65
    # nanoGPT's 90/10 split: its last 10 % is our test; val is the end of its train part.
    assert len(d.test) == 111_540 and len(d.train) + len(d.val) == 1_003_854
    assert len(d.val) == len(d.test) and d.chars == {
        "train": 892_314,
        "val": 111_540,
        "test": 111_540,
    }


def write_text_dataset(monkeypatch, root: Path, text: str) -> None:
    path = root / "tinyshakespeare/input.txt"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    spec = catalog.TINYSHAKESPEARE
    files = (replace(spec.files[0], checksum=sha256(path)),)
    monkeypatch.setitem(catalog.SPECS, "tinyshakespeare", replace(spec, files=files, urls=OFFLINE))


def test_char_level_text_split(monkeypatch, tmp_path):
    write_text_dataset(monkeypatch, tmp_path, "abcdefghij" * 10)
    d = load_text("tinyshakespeare", tmp_path)
    assert d.vocab_size == 10 and (len(d.train), len(d.val), len(d.test)) == (80, 10, 10)
    assert d.train[:10].tolist() == list(range(10))


def test_wrong_checksum_text_is_never_used(monkeypatch, tmp_path):
    path = tmp_path / "tinyshakespeare/input.txt"
    path.parent.mkdir(parents=True)
    path.write_text("not shakespeare")
    with pytest.raises(DatasetError) as e:
        load_text("tinyshakespeare", tmp_path)
    msg = one_line(e)
    assert (
        str(path) in msg
        and catalog.TINYSHAKESPEARE.files[0].checksum in msg
        and sha256(path) in msg
    )


def test_wikitext2_bpe_from_zip_is_cached(monkeypatch, tmp_path):
    zpath = tmp_path / "wikitext2/wikitext-2-raw-v1.zip"
    zpath.parent.mkdir(parents=True)
    words = [
        f" = Section {i} = \n the quick brown fox {i % 7} jumps over the lazy dog .\n"
        for i in range(300)
    ]
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("wikitext-2-raw/wiki.train.raw", "".join(words[:250]))
        z.writestr("wikitext-2-raw/wiki.valid.raw", "".join(words[250:]))
        z.writestr("wikitext-2-raw/wiki.test.raw", "".join(words[:20]))
    spec = replace(
        catalog.WIKITEXT2, files=(replace(catalog.WIKITEXT2.files[0], checksum=sha256(zpath)),)
    )
    monkeypatch.setitem(catalog.SPECS, "wikitext2", replace(spec, urls=OFFLINE))
    cache = tmp_path / "cache/wikitext2"
    monkeypatch.setenv("OPTBENCH_CACHE", str(cache.parent))
    a = load_text("wikitext2", tmp_path, tokenizer="bpe", vocab_size=300)
    assert not list(zpath.parent.glob("bpe-*"))  # nothing written into the data folder
    cached = sorted(p.name for p in cache.glob("bpe-*"))
    assert len(cached) == 2 and {Path(c).suffix for c in cached} == {".json", ".pt"}
    b = load_text("wikitext2", tmp_path, tokenizer="bpe", vocab_size=300)
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val)
    assert 257 <= a.vocab_size <= 300 and int(a.train.max()) < a.vocab_size
    assert len(a.val) < a.chars["val"]  # merges make tokens longer than one character
    load_text("wikitext2", tmp_path, tokenizer="bpe", vocab_size=280)  # other settings, other file
    assert len(list(cache.glob("bpe-*"))) == 4


# --- batches ------------------------------------------------------------------------------


def test_epoch_indices_are_permutations_and_pure():
    n, b = 10, 3  # 3 batches per epoch, the last sample of each epoch dropped
    epoch0 = torch.cat([epoch_indices(n, b, 7, s, "cpu") for s in range(3)])
    assert len(set(epoch0.tolist())) == 9
    assert torch.equal(epoch_indices(n, b, 7, 4, "cpu"), epoch_indices(n, b, 7, 4, "cpu"))
    epoch1 = torch.cat([epoch_indices(n, b, 7, s, "cpu") for s in range(3, 6)])
    assert not torch.equal(epoch0, epoch1)
    with pytest.raises(ValueError):
        epoch_indices(2, 3, 0, 0, "cpu")


def test_random_crop_and_flip():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5) + 1
    out = random_crop(x, 2, generator(0, 0, "cpu"))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):  # each sample is one window of its padded image
        hits = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(out[i], padded[i, :, dy : dy + 5, dx : dx + 5])
        ]
        assert hits
    assert torch.equal(out, random_crop(x, 2, generator(0, 0, "cpu")))
    flipped = random_hflip(x.repeat(16, 1, 1, 1), generator(1, 0, "cpu"))
    same = [torch.equal(f, x[i % 2]) for i, f in enumerate(flipped)]
    mirrored = [torch.equal(f, x[i % 2].flip(-1)) for i, f in enumerate(flipped)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True)) and any(same) and any(mirrored)


def test_windows():
    tokens = torch.arange(100)
    x, y = random_windows(tokens, 8, 5, generator(0, 3, "cpu"))
    assert x.shape == y.shape == (5, 8) and torch.equal(y, x + 1)
    fx, fy = fixed_windows(tokens, 8, 4)
    assert fx[0, 0] == 0 and fy[-1, -1] == 99 and torch.equal(fx, fixed_windows(tokens, 8, 4)[0])
