"""The datasets we know: where each comes from and its published checksums.

Sources of the checksums, so that anyone can check them:
- MNIST, Fashion-MNIST, CIFAR-10: md5 sums as published in torchvision's dataset
  code (torchvision/datasets/mnist.py and cifar.py), the same URLs as there.
  MNIST and Fashion-MNIST also carry the sha256 of each file's decompressed
  content (the canonical IDX bytes, as listed in ../shared/data/MANIFEST.txt,
  whose md5 matches torchvision's published md5 of the raw files): a
  recompressed .gz of the same content is accepted by it.
- Brown corpus: NLTK's corpora/brown.zip (nltk_data, gh-pages); no checksum of
  the zip is published, so the extracted files are checked by a digest over
  the sorted files, sha256 of (name + sha256(file)) for each in turn, as in
  MANIFEST.txt (suite/data/brown.py).
- Tiny Shakespeare: sha256 of karpathy/char-rnn data/tinyshakespeare/input.txt
  (1,115,394 bytes), as in /work/shared/data/MANIFEST.txt.
- WikiText-2 (raw): sha256 and size (4,721,645 bytes) of wikitext-2-raw-v1.zip
  as published in huggingface/datasets datasets/wikitext/dataset_infos.json
  for the Salesforce S3 URL; wikitext.smerity.com is the author's mirror of the
  same archive (the checksum guards it).
"""

from __future__ import annotations

from .fetch import DatasetSpec, FileSpec

MNIST = DatasetSpec(
    name="mnist",
    folder="mnist",
    files=(
        FileSpec(
            "train-images-idx3-ubyte.gz",
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "md5",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        FileSpec(
            "train-labels-idx1-ubyte.gz",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "md5",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        FileSpec(
            "t10k-images-idx3-ubyte.gz",
            "9fb629c4189551a2d022fa330f9573f3",
            "md5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        FileSpec(
            "t10k-labels-idx1-ubyte.gz",
            "ec29112dd5afa0611ce80d1b7f02629c",
            "md5",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    ),
    urls=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
)

FASHION_MNIST = DatasetSpec(
    name="fashion_mnist",
    folder="fashion_mnist",
    files=(
        FileSpec(
            "train-images-idx3-ubyte.gz",
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "md5",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        FileSpec(
            "train-labels-idx1-ubyte.gz",
            "25c81989df183df01b3e8a0aad5dffbe",
            "md5",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        FileSpec(
            "t10k-images-idx3-ubyte.gz",
            "bef4ecab320f06d8554ea6380940ec79",
            "md5",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        FileSpec(
            "t10k-labels-idx1-ubyte.gz",
            "bb300cfdad3c16e7a12a480ee83cd310",
            "md5",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ),
    urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
)

# The archive as downloaded; read in place (no extraction needed).
CIFAR10 = DatasetSpec(
    name="cifar10",
    folder="cifar10",
    files=(FileSpec("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "md5"),),
    urls=("https://www.cs.toronto.edu/~kriz/",),
)

# The same data already extracted (``tar xzf`` in the cifar10 folder); used when present.
CIFAR10_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
CIFAR10_EXTRACTED = DatasetSpec(
    name="cifar10",
    folder="cifar10",
    files=tuple(
        FileSpec(f"cifar-10-batches-py/{n}", md5, "md5")
        for n, md5 in (
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
            ("test_batch", "40351d587109b95175f43aff81a1287e"),
        )
    ),
)

TINYSHAKESPEARE = DatasetSpec(
    name="tinyshakespeare",
    folder="tinyshakespeare",
    files=(
        FileSpec("input.txt", "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
    ),
    urls=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/",),
)

# Read from the zip in place: wikitext-2-raw/wiki.{train,valid,test}.raw.
WIKITEXT2 = DatasetSpec(
    name="wikitext2",
    folder="wikitext2",
    files=(
        FileSpec(
            "wikitext-2-raw-v1.zip",
            "ef7edb566e3e2b2d31b29c1fdb0c89a4cc683597484c3dc2517919c615435a11",
        ),
    ),
    urls=(
        "https://s3.amazonaws.com/research.metamind.io/wikitext/",
        "https://wikitext.smerity.com/",
    ),
)

# The 500 samples of the Brown corpus in NLTK's layout, checked as a whole (see brown.py).
BROWN_URL = "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora/brown.zip"
BROWN_DIGEST = "cd74066201e6aa3ef305be0641a039962e4a0a606879b42052f8051ed31bfcc5"
BROWN_FILES = 503  # ca01..cr09, cats.txt, CONTENTS, README

SPECS: dict[str, DatasetSpec] = {
    s.name: s for s in (MNIST, FASHION_MNIST, CIFAR10, TINYSHAKESPEARE, WIKITEXT2)
}
