"""Datasets: root resolution, download with checksums, readers, and (seed, step) batches.

Layout under the data root (see :mod:`suite.data.root`)::

    mnist/          train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-*.gz
    fashion_mnist/  the same four files
    cifar10/        cifar-10-python.tar.gz  (or its extracted cifar-10-batches-py/)
    tinyshakespeare/input.txt
    wikitext2/      wikitext-2-raw-v1.zip
    brown/          NLTK's corpora/brown: ca01 .. cr09, cats.txt, README, CONTENTS

Derived files (BPE tokenizers, encoded corpora, verified digests) go to the user
cache (``$OPTBENCH_CACHE`` or ``~/.cache/optbench``), never into the data root.

scikit-learn's digits ship with scikit-learn and need no file.
"""

from . import brown, catalog, fetch, splits
from .fetch import DatasetError, DatasetSpec, FileSpec, ensure
from .images import IMAGE_DATASETS, ImageData, load_images
from .root import resolve_root
from .text import TEXT_DATASETS, TokenData, load_text

__all__ = [
    "brown",
    "catalog",
    "fetch",
    "splits",
    "DatasetError",
    "DatasetSpec",
    "FileSpec",
    "IMAGE_DATASETS",
    "ImageData",
    "TEXT_DATASETS",
    "TokenData",
    "ensure",
    "load_images",
    "load_text",
    "resolve_root",
]
