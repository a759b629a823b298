"""Nothing read from a config, record, study, checkpoint or data file runs code (issue 22).

Each test plants a payload whose execution would leave a marker file, and checks the marker
is absent and the refusal is one line. Before the fix each would fail as the docstring says.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from omegaconf import OmegaConf

from suite import trust
from suite.data import fetch
from suite.data.catalog import DatasetSpec, FileSpec
from suite.data.fetch import ensure, file_digest
from suite.data.images import read_cifar_batch
from suite.data.text import _read_bpe_cache
from suite.record import RecordError
from suite.runner.run_folder import check_resume_config
from suite.tune.study import check_stored_overrides, open_study
from suite.tune.study_config import StudyConfig, StudyError


class Payload:
    """Unpickling this touches ``marker`` (os.system would do anything else)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_nested_target_is_refused_anywhere_in_a_run_config(tmp_path):
    """Before: nothing looked below optimizer._target_; Hydra's recursive instantiate built
    ``{_target_: pathlib.Path.write_text}`` under weight_decay and wrote the file."""
    marker = str(tmp_path / "pwned")
    payload = {"_target_": "pathlib.Path.write_text", "self": marker, "data": "x"}
    base = {"optimizer": {"_target_": "suite.optim.sgd.SGD", "lr": 0.1}, "task": {"name": "toy"}}
    trust.check_run_config(OmegaConf.create(base))  # the optimizer's own class is fine
    for where in (
        {"optimizer": {**base["optimizer"], "weight_decay": payload}},
        {"optimizer": {**base["optimizer"], "betas": [payload, 0.9]}},
        {"task": {"name": "toy", "dim": {"deep": payload}}},
        {"schedule": {"name": payload}},
    ):
        cfg = OmegaConf.create({**base, **where})
        with pytest.raises(ValueError, match="_target_") as e:
            trust.check_run_config(cfg)
        assert "\n" not in str(e.value) and "pathlib.Path.write_text" in str(e.value)
    assert not Path(marker).exists()


def test_study_extra_overrides_only_take_keys_a_run_accepts(tmp_path):
    """Before: compare passed budget.extra from someone's study.json straight to suite.run."""
    ok = StudyConfig("toy", "sgd", 1, tmp_path, extra=("threads=1", "++task.dim=4"))
    ok.check()
    for bad in (
        "+optimizer.weight_decay={_target_:shutil.copyfile,src:/etc/passwd,dst:/tmp/x}",
        "++task.dim={_target_:os.getcwd}",
        "+optimizer._target_=os.system",
        "++task.nope=1",
        "hydra/launcher=basic",
        "schedule.warmup_steps=[{_target_:os.getcwd}]",
    ):
        cfg = StudyConfig("toy", "sgd", 1, tmp_path, extra=(bad,))
        with pytest.raises(StudyError, match="refused|set by the study"):
            cfg.check()


def _study_with_trial(tmp_path, overrides, run_dir="trials/0000"):
    cfg = StudyConfig("toy", "sgd", 1, tmp_path / "out")
    study = open_study(cfg)  # real sqlite storage, as a resumed tune reads it
    study.add_trial(
        optuna.trial.create_trial(
            value=1.0, user_attrs={"overrides": overrides, "run_dir": run_dir}
        )
    )
    return cfg, study.get_trials()[0]


def test_stored_trial_overrides_are_checked_before_a_rerun(tmp_path):
    """Before: rerun() passed the study.db's stored overrides on to suite.run unchecked."""
    cfg, good = _study_with_trial(tmp_path, ["optimizer.lr=0.1", "optimizer.momentum=0.9"])
    check_stored_overrides(cfg, good)
    for bad in (
        ["optimizer.weight_decay={_target_:pathlib.Path.write_text,self:/tmp/x,data:y}"],
        ["optimizer._target_=os.system"],
        ["hydra.run.dir=/etc"],
        ["+task.dim=3"],
    ):
        cfg, t = _study_with_trial(tmp_path / str(abs(hash(bad[0]))), bad)
        with pytest.raises(StudyError, match="refused"):
            check_stored_overrides(cfg, t)


def test_a_stored_run_dir_that_leaves_the_study_is_refused(tmp_path):
    from suite.tune.study import _trial_dir

    cfg, t = _study_with_trial(tmp_path, [], run_dir="../../../../etc")
    with pytest.raises(StudyError, match="leaves"):
        _trial_dir(cfg, t)


def test_a_checkpoint_pickle_payload_is_never_run(tmp_path):
    """Before: train.py loaded checkpoints with weights_only=False, so this touched the file."""
    marker = tmp_path / "pwned"
    torch.save({"model": Payload(marker)}, tmp_path / "checkpoint.pt")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # how train.py loads now
    assert not marker.exists()
    source = (Path(__file__).parent.parent / "suite" / "runner" / "checkpoint.py").read_text()
    assert "weights_only=False" not in source


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random

    from suite.runner.checkpoint import rng_state as _rng_state
    from suite.runner.checkpoint import seed_everything
    from suite.runner.checkpoint import set_rng_state as _set_rng_state

    seed_everything(3)
    torch.save({"rng": _rng_state()}, tmp_path / "c.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    _set_rng_state(torch.load(tmp_path / "c.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_a_bpe_cache_payload_is_not_run_and_the_cache_is_rebuilt(tmp_path, capsys):
    """Before: text.py torch.load()ed the encoded-text cache with weights_only=False (the
    default of torch < 2.6 and of an explicit False); a torn cache was a traceback."""
    from tokenizers import ByteLevelBPETokenizer, Tokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["hello world\n"] * 20, vocab_size=260, show_progress=False)
    bpe.save(str(tmp_path / "bpe.json"))
    marker = tmp_path / "pwned"
    ids = tmp_path / "bpe-tokens.pt"
    torch.save({"train": Payload(marker)}, ids)
    assert _read_bpe_cache(tmp_path / "bpe.json", ids, Tokenizer) is None
    assert not marker.exists()
    ids.write_bytes(b"PK\x03\x04 torn")  # truncated: rebuilt, the warning names the file
    assert _read_bpe_cache(tmp_path / "bpe.json", ids, Tokenizer) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(str(ids) in line and "rebuilding" in line for line in err)


def test_a_python_tag_in_config_yaml_is_one_line_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "config.yaml").write_text(
        f"a: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    with pytest.raises(RecordError) as e:
        check_resume_config(tmp_path, OmegaConf.create({"a": 1}))
    assert "\n" not in str(e.value) and "config.yaml" in str(e.value)
    assert not marker.exists()
    (tmp_path / "config.yaml").write_text("task:\n  name: [toy\n")  # truncated
    with pytest.raises(RecordError, match="not a readable config"):
        check_resume_config(tmp_path, OmegaConf.create({"a": 1}))


def test_resume_with_a_checkpoint_but_no_config_is_refused(tmp_path):
    """Before: no config.yaml meant no check, so resume=true optimizer.lr=0.5 recorded 0.5
    while the checkpoint trained on with the old lr."""
    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    with pytest.raises(RecordError, match="missing but a checkpoint"):
        check_resume_config(tmp_path, OmegaConf.create({"a": 1}))


def test_a_cifar_batch_that_names_a_function_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    good = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    x, y = read_cifar_batch(_pickled(good, tmp_path / "good"), "good")
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [0, 1]
    from suite.data import DatasetError

    with pytest.raises(DatasetError, match="refused global"):
        read_cifar_batch(_pickled({b"data": Payload(marker)}, tmp_path / "bad"), "bad")
    assert not marker.exists()


def _pickled(obj, path: Path):
    path.write_bytes(pickle.dumps(obj))
    return open(path, "rb")  # noqa: SIM115  closed with the test's tmp_path


def test_a_file_swapped_for_one_of_the_same_size_and_mtime_is_hashed_again(monkeypatch, tmp_path):
    """Before: the stamp keyed on (size, mtime) only, so this swap was accepted unhashed."""
    monkeypatch.setattr(fetch, "STAMP_MIN_BYTES", 0)
    monkeypatch.setenv("OPTBENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "ds").mkdir()
    path = tmp_path / "ds/a.bin"
    path.write_bytes(b"x" * 100)
    spec = DatasetSpec("ds", "ds", (FileSpec("a.bin", file_digest(path, "sha256")),))
    ensure(spec, tmp_path)
    st = path.stat()
    swap = tmp_path / "swap.bin"
    swap.write_bytes(b"y" * 100)
    os.utime(swap, ns=(st.st_atime_ns, st.st_mtime_ns))
    shutil.move(swap, path)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    with pytest.raises(fetch.DatasetError, match="checksum mismatch"):
        ensure(spec, tmp_path)


def test_inside_refuses_paths_that_leave_their_root(tmp_path):
    assert trust.inside(tmp_path, "a/b", "x") == (tmp_path / "a/b").resolve()
    for bad in ("../x", "/etc/passwd", "a/../../x", "", None):
        with pytest.raises(ValueError):
            trust.inside(tmp_path, bad, "x")
