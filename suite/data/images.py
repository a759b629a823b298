"""Image classification datasets as uint8 tensors: MNIST, Fashion-MNIST, CIFAR-10, digits.

Every reader returns an :class:`ImageData`: train, val and test images as one
uint8 tensor each, shape (N, C, H, W), labels int64 (N,), and the train split's
per-channel mean and std (in [0, 1] pixel units) for normalisation. The test
split is the official one; val is a fixed holdout of the official training
images (suite/data/splits.py).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import catalog
from .fetch import DatasetError, ensure
from .root import resolve_root
from .splits import VAL_SIZE, holdout

IDX_IMAGES_MAGIC = 0x00000803  # uint8 (0x08), 3 dims
IDX_LABELS_MAGIC = 0x00000801  # uint8 (0x08), 1 dim


@dataclass(frozen=True)
class ImageData:
    name: str
    train_x: torch.Tensor  # uint8 (N, C, H, W)
    train_y: torch.Tensor  # int64 (N,)
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]  # per channel, of train_x / 255 (the train split only)
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def size(self) -> int:
        return self.train_x.shape[-1]

    def to(self, device: torch.device | str) -> ImageData:
        return replace(
            self,
            train_x=self.train_x.to(device),
            train_y=self.train_y.to(device),
            val_x=self.val_x.to(device),
            val_y=self.val_y.to(device),
            test_x=self.test_x.to(device),
            test_y=self.test_y.to(device),
        )


def _make(name: str, train_x, train_y, test_x, test_y, num_classes: int = 10) -> ImageData:
    """Carve the fixed val split out of the official training images, then take the
    normalisation statistics from what is left for training."""
    tr, va = holdout(len(train_x), VAL_SIZE[name])
    x = train_x[tr].double() / 255
    mean = tuple(x.mean(dim=(0, 2, 3)).tolist())
    std = tuple(x.std(dim=(0, 2, 3)).tolist())
    train_y = train_y.long()
    return ImageData(
        name,
        train_x[tr],
        train_y[tr],
        train_x[va],
        train_y[va],
        test_x,
        test_y.long(),
        num_classes,
        mean,
        std,
    )


# --- IDX (MNIST, Fashion-MNIST) -----------------------------------------------------------


def read_idx(path: str | os.PathLike, magic: int) -> torch.Tensor:
    """A uint8 IDX file (gzip or plain), checked for its magic number and size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # truncated gzip stream, not gzip at all
        raise DatasetError(f"{path}: unreadable IDX file ({e})") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX file ({len(data)} bytes, header needs {header})")
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        raise DatasetError(f"{path}: bad IDX magic number 0x{got:08x}, expected 0x{magic:08x}")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DatasetError(
            f"{path}: IDX size {len(data)} bytes does not match its shape {dims} ({expected} bytes)"
        )
    arr = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(arr.copy())


def _read_idx_pair(folder: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz", IDX_IMAGES_MAGIC)
    y = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", IDX_LABELS_MAGIC)
    if len(x) != len(y):
        raise DatasetError(f"{folder}: {prefix} has {len(x)} images but {len(y)} labels")
    if len(y) and int(y.max()) >= 10:
        raise DatasetError(f"{folder}: {prefix} labels must be < 10, found {int(y.max())}")
    return x.unsqueeze(1), y


def load_mnist(name: str = "mnist", root: str | os.PathLike | None = None) -> ImageData:
    """MNIST or Fashion-MNIST (``name`` is "mnist" or "fashion_mnist")."""
    folder = ensure(catalog.SPECS[name], resolve_root(root))
    train_x, train_y = _read_idx_pair(folder, "train")
    test_x, test_y = _read_idx_pair(folder, "t10k")
    return _make(name, train_x, train_y, test_x, test_y)


# --- CIFAR-10 (python pickle batches) -----------------------------------------------------


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds plain types and numpy arrays only: a data file, even one
    whose digest was checked, never names a function to call."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name} (data holds no code)")
        return super().find_class(module, name)


def read_cifar_batch(f, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One pickled CIFAR-10 batch: a dict with b"data" (N, 3072) uint8 and b"labels"."""
    try:
        d = _ArraysOnly(f, encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, OSError) as e:
        raise DatasetError(
            f"{where}: unreadable CIFAR-10 batch ({type(e).__name__}: {e})"
        ) from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DatasetError(
            f"{where}: CIFAR-10 batch has data {data.shape} and {len(labels)} labels, "
            "expected (N, 3072) and N"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= 10):
        raise DatasetError(f"{where}: CIFAR-10 labels must be in 0..9")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


def _cat(parts):
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def load_cifar10(root: str | os.PathLike | None = None) -> ImageData:
    """CIFAR-10 from ``cifar10/cifar-10-batches-py/`` if extracted, else from the tar.gz."""
    root = resolve_root(root)
    names = [*catalog.CIFAR10_BATCHES, "test_batch"]
    if (root / catalog.CIFAR10_EXTRACTED.folder / "cifar-10-batches-py").is_dir():
        folder = ensure(catalog.CIFAR10_EXTRACTED, root) / "cifar-10-batches-py"
        parts = []
        for n in names:
            with open(folder / n, "rb") as f:
                parts.append(read_cifar_batch(f, str(folder / n)))
    else:
        spec = catalog.SPECS["cifar10"]
        path = ensure(spec, root) / spec.files[0].name
        parts = []
        try:
            with tarfile.open(path, "r:gz") as tar:
                for n in names:
                    member = tar.extractfile(f"cifar-10-batches-py/{n}")
                    parts.append(read_cifar_batch(io.BytesIO(member.read()), f"{path}:{n}"))
        except (tarfile.TarError, EOFError, OSError, KeyError, AttributeError) as e:
            raise DatasetError(
                f"{path}: unreadable CIFAR-10 archive ({type(e).__name__}: {e})"
            ) from None
    train_x, train_y = _cat(parts[:-1])
    test_x, test_y = parts[-1]
    return _make("cifar10", train_x, train_y, test_x, test_y)


# --- scikit-learn digits (bundled with the package) ---------------------------------------


def load_digits(test_size: int = 360, seed: int = 0) -> ImageData:
    """The 1,797 8x8 digits, split stratified into 1,437 train / 360 test with a fixed seed
    (then 360 of the 1,437 become val: 1,077 / 360 / 360)."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    d = sk_load_digits()
    x = np.round(d.images * (255 / 16)).astype(np.uint8)[:, None]  # pixel values 0..16 -> 0..255
    xtr, xte, ytr, yte = train_test_split(
        x, d.target, test_size=test_size, random_state=seed, stratify=d.target
    )
    t = torch.from_numpy
    return _make("digits", t(xtr), t(ytr), t(xte), t(yte))


IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")


def load_images(name: str, root: str | os.PathLike | None = None) -> ImageData:
    """Any of IMAGE_DATASETS by name."""
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion_mnist"):
        return load_mnist(name, root)
    if name == "cifar10":
        return load_cifar10(root)
    raise ValueError(f"unknown image dataset {name!r}; valid: {', '.join(IMAGE_DATASETS)}")
