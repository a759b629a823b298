"""The real-data workloads: content checksums, fixed disjoint splits, the Brown corpus
reader, and the DeepOBS problems against DeepOBS's definitions."""

from __future__ import annotations

import gzip
import hashlib
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from suite.data import DatasetError, DatasetSpec, FileSpec, brown, catalog, ensure, load_images
from suite.data.batches import epoch_indices
from suite.data.root import resolve_root
from suite.data.splits import SPLIT_SEED, holdout, nanogpt_split
from suite.runner.schema import fixed_hparams_problem
from suite.tasks import build_task
from suite.tasks.deepobs import net_2c2d, net_mlp

ROOT = resolve_root()
HAVE = {n: (ROOT / n).is_dir() for n in ("fashion_mnist", "mnist", "brown")}
need = {n: pytest.mark.skipif(not ok, reason=f"{n} not under {ROOT}") for n, ok in HAVE.items()}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --- content checksums ----------------------------------------------------------------------


def test_gz_is_accepted_by_published_md5_or_by_content(tmp_path):
    """Two compressions of one content: the 'canonical' one passes by its md5, the other by
    the sha256 of its decompressed content; other content or a torn stream is refused."""
    content = bytes(range(256)) * 64
    folder = tmp_path / "ds"
    folder.mkdir()
    canonical = gzip.compress(content, compresslevel=1, mtime=0)
    spec = FileSpec(
        "f.gz",
        hashlib.md5(canonical).hexdigest(),
        "md5",
        hashlib.sha256(content).hexdigest(),
    )
    ds = DatasetSpec("ds", "ds", (spec,))
    for data in (canonical, gzip.compress(content, compresslevel=9, mtime=1)):
        (folder / "f.gz").write_bytes(data)
        ensure(ds, tmp_path)
    for bad in (gzip.compress(content[:-1]), gzip.compress(content)[:100]):
        (folder / "f.gz").write_bytes(bad)
        with pytest.raises(DatasetError) as e:
            ensure(ds, tmp_path)
        msg = str(e.value)
        assert "\n" not in msg and str(folder / "f.gz") in msg
        assert spec.checksum in msg and spec.content_sha256 in msg


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_shared_files_pass_by_content_not_by_gz_bytes(name):
    if not HAVE[name]:
        pytest.skip(f"{name} not under {ROOT}")
    spec = catalog.SPECS[name]
    folder = ensure(spec, ROOT)
    for f in spec.files:  # recompressed offline copies: the .gz bytes differ from canonical
        assert md5(folder / f.name) != f.checksum
        with gzip.open(folder / f.name, "rb") as g:
            assert hashlib.sha256(g.read()).hexdigest() == f.content_sha256
    wrong = replace(spec.files[0], content_sha256="0" * 64)
    with pytest.raises(DatasetError, match="0" * 64):
        ensure(replace(spec, files=(wrong,), urls=()), ROOT)


# --- splits ---------------------------------------------------------------------------------


def test_holdout_is_fixed_disjoint_and_ignores_the_global_seed():
    torch.manual_seed(123)
    tr, va = holdout(1000, 100)
    torch.manual_seed(7)
    tr2, va2 = holdout(1000, 100)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    assert len(va) == 100 and len(tr) == 900
    assert (
        set(tr.tolist()).isdisjoint(va.tolist())
        and len(set(tr.tolist()) | set(va.tolist())) == 1000
    )
    assert not torch.equal(holdout(1000, 100, SPLIT_SEED + 1)[1], va)


def test_nanogpt_split_keeps_nanogpts_last_tenth_as_test():
    text = "".join(chr(65 + i % 26) for i in range(1000))
    train, val, test = nanogpt_split(text)
    assert test == text[900:] and train + val == text[:900] and len(val) == len(test) == 100


@need["fashion_mnist"]
def test_real_image_splits_are_disjoint_and_fixed():
    a, b = load_images("fashion_mnist"), load_images("fashion_mnist")
    assert (len(a.train_x), len(a.val_x), len(a.test_x)) == (50_000, 10_000, 10_000)
    assert torch.equal(a.val_x, b.val_x) and torch.equal(a.train_y, b.train_y)
    # disjoint: no val image is a train image (compare image hashes; duplicates across the
    # official train set itself would show up as overlap, so count against that baseline)
    h = lambda x: {hashlib.blake2b(im.numpy().tobytes(), digest_size=8).digest() for im in x}  # noqa: E731
    train, val = h(a.train_x), h(a.val_x)
    assert len(train & val) <= 0.001 * len(val)
    counts = torch.bincount(a.val_y, minlength=10)
    assert counts.min() > 900 and counts.max() < 1100  # a random 1/6, every class present


# --- the Brown corpus -----------------------------------------------------------------------


def write_brown(folder: Path, n_per_genre: int = 10) -> None:
    folder.mkdir(parents=True)
    cats = []
    for g, genre in (("a", "news"), ("b", "editorial")):
        for i in range(1, n_per_genre + 1):
            name = f"c{g}{i:02d}"
            cats.append(f"{name} {genre}")
            (folder / name).write_text(
                f"\n\n\tThe/at {genre}/nn no./nn {i}/cd ``/`` said/vbd ''/'' ./.\n\n\n"
                f"\tA/at second/od sentence/nn ./.\n"
            )
    (folder / "cats.txt").write_text("\n".join(cats) + "\n")


def test_brown_reader_strips_tags_and_splits_by_file(tmp_path, monkeypatch):
    folder = tmp_path / "brown"
    write_brown(folder)
    assert brown.strip_tags("\tThe/at jury/nn ``/`` a/b/x ./.") == 'The jury " a/b .'
    split = brown.split_files(folder)
    assert split == {
        "train": sorted([f"c{g}{i:02d}" for g in "ab" for i in range(1, 9)]),
        "val": ["ca09", "cb09"],
        "test": ["ca10", "cb10"],
    }
    text = brown.read_split(folder)
    assert text["val"].splitlines() == [
        'The news no. 9 " said " .',
        "A second sentence .",
        'The editorial no. 9 " said " .',
        "A second sentence .",
    ]
    digest, n = brown.folder_digest(folder)
    with pytest.raises(DatasetError) as e:
        brown.ensure_brown(tmp_path)  # the real digest does not match a generated corpus
    assert catalog.BROWN_DIGEST in str(e.value) and digest in str(e.value)
    monkeypatch.setattr(catalog, "BROWN_DIGEST", digest)
    assert brown.ensure_brown(tmp_path) == folder
    (folder / "ca03").write_text("changed/nn")
    with pytest.raises(DatasetError, match=digest):
        brown.ensure_brown(tmp_path)


def test_brown_missing_offline_names_what_it_expects(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "BROWN_URL", "http://127.0.0.1:9/brown.zip")
    with pytest.raises(DatasetError) as e:
        brown.ensure_brown(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and catalog.BROWN_DIGEST in msg and str(tmp_path / "brown") in msg


@need["brown"]
def test_real_brown_split():
    folder = brown.ensure_brown(ROOT)
    split = brown.split_files(folder)
    assert {k: len(v) for k, v in split.items()} == {"train": 414, "val": 45, "test": 41}
    names = [n for v in split.values() for n in v]
    assert len(names) == len(set(names)) == 500
    text = brown.read_split(folder)
    assert sum(len(v.split()) for v in text.values()) == 1_161_192  # nltk.corpus.brown.words()
    assert text["train"].startswith("The Fulton County Grand Jury said Friday an investigation")
    assert not any(t in text["train"] for t in ("/at ", "/nn ", "/vbd "))  # no tags left


@need["brown"]
def test_lm_brown_task_with_bpe_on_train_files():
    task = build_task("lm", dataset="brown", n_layer=1, n_embd=16, n_head=2, eval_windows=8)
    assert task.name == "lm_brown" and task.target.metric == "val/loss"
    assert task.data.tokenizer == "bpe" and task.data.vocab_size <= 4096
    metrics = task.evaluate(task.build_model())
    assert {"train/loss", "val/loss", "test/loss", "val/bpc", "test/bpc"} <= set(metrics)


# --- DeepOBS problems -----------------------------------------------------------------------

# Parameter shapes of DeepOBS's net_mnist_2c2d and net_mlp (testproblems_modules.py).
SHAPES = {
    "2c2d": [(32, 1, 5, 5), (32,), (64, 32, 5, 5), (64,), (1024, 3136), (1024,), (10, 1024), (10,)],
    "mlp": [(1000, 784), (1000,), (500, 1000), (500,), (100, 500), (100,), (10, 100), (10,)],
}
COUNTS = {"2c2d": 3_274_634, "mlp": 1_336_610}
INIT = {"2c2d": (0.05, 0.05), "mlp": (3e-2, 0.0)}  # (truncated-normal std, bias constant)


@pytest.mark.parametrize("arch, net", [("2c2d", net_2c2d), ("mlp", net_mlp)])
def test_deepobs_architecture_and_init(arch, net):
    torch.manual_seed(0)
    model = net(10)
    params = list(model.parameters())
    assert [tuple(p.shape) for p in params] == SHAPES[arch]
    assert sum(p.numel() for p in params) == COUNTS[arch]
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    std, bias = INIT[arch]
    # N(0, std) cut at +-2 std has std * sqrt(1 - 2 * 2 phi(2) / (Phi(2) - Phi(-2))) = 0.8796 std
    phi2, mass = math.exp(-2) / math.sqrt(2 * math.pi), math.erf(2 / math.sqrt(2))
    trunc_std = std * math.sqrt(1 - 4 * phi2 / mass)
    weights = torch.cat([p.flatten() for p in params if p.ndim > 1])
    assert weights.abs().max() <= 2 * std
    assert abs(weights.std().item() - trunc_std) < 0.01 * trunc_std
    assert abs(weights.mean().item()) < 0.01 * std
    assert all(torch.all(p == bias) for p in params if p.ndim == 1)


@need["fashion_mnist"]
def test_deepobs_task_is_unregularized_and_unnormalised():
    task = build_task("deepobs", dataset="fashion_mnist", arch="2c2d")
    assert task.name == "fmnist_2c2d" and task.batch_size == 128
    assert task.default_steps == 100 * 390  # DeepOBS: 100 epochs at batch 128
    x, y = task.batch(0, 0)
    idx = epoch_indices(50_000, 128, 0, 0, "cpu")
    # pixels / 255 and nothing else: no normalisation, no augmentation
    assert torch.equal(x, task.data.train_x[idx].float() / 255)
    assert torch.equal(y, task.data.train_y[idx])
    fixed = task.fixed_hparams
    assert fixed_hparams_problem(task.name, fixed, {"lr": 0.1, "weight_decay": 0.0}) is None
    problem = fixed_hparams_problem(task.name, fixed, {"lr": 0.1, "weight_decay": 0.01})
    assert "weight_decay must be 0, got 0.01" in problem


def test_eval_size_evaluates_a_fixed_subset_of_val_and_test():
    small = dict(dataset="digits", width=8, batch_size=16, eval_train_size=50)
    full, same, sub = (build_task("cnn", **small, eval_size=k) for k in (None, 360, 100))
    torch.manual_seed(0)
    model = full.build_model()
    assert full.evaluate(model) == same.evaluate(model)  # a subset of all is all
    m = sub.evaluate(model)
    assert len(sub.eval_idx["val"]) == len(sub.eval_idx["test"]) == 100
    assert round(m["val/acc"] * 100, 6) == round(m["val/acc"] * 100) and m == sub.evaluate(model)
