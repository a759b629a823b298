"""Payloads in files someone else made: each would leave a marker file if it ran. Every
case must refuse in one line (exit 2) and leave no marker: payloads executed must be 0.

- nested ``_target_`` under an optimizer hyperparameter, in a list, under a task key;
- a ``checkpoint.pt`` whose pickle calls a function, resumed;
- a ``config.yaml`` with a ``!!python/object/apply`` tag, resumed;
- a baseline ``study.json`` whose ``budget.extra`` carries a ``_target_`` (``suite.tune.compare``);
- a ``study.db`` whose stored trial overrides carry one (a resumed ``suite.tune``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from faultcases.campaign import FAST, KILL, REPO, Campaign, Row, brief, headline, refusal

MARKER = "PAYLOAD_RAN"


def _target(marker: Path) -> str:
    return f"{{_target_:pathlib.Path.write_text,self:{marker},data:x}}"


def _row(case: str, marker: Path, observed: str, ok: bool) -> Row:
    ran = marker.exists()
    if ran:
        observed, ok = f"{observed} [PAYLOAD EXECUTED]", False
    return Row("security", case, "refused in one line, nothing run", observed, ok, executed=ran)


def override_case(c: Campaign, name: str, overrides: tuple[str, ...]) -> Row:
    folder = c.root / f"security_{name}"
    folder.mkdir()
    marker = folder / MARKER
    run_dir = folder / "run"
    proc = c.suite(*FAST, "steps=5", *[o.replace("@M", _target(marker)) for o in overrides],
                   run_dir=run_dir)  # fmt: skip
    observed, ok = refusal(proc, run_dir, ("_target_",))
    return _row(f"{name}: {' '.join(overrides)}", marker, observed, ok)


PICKLE_PAYLOAD = """
import pathlib, sys, torch
class P:
    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(sys.argv[2]),))
torch.save({"model": P(), "track": {"step": 100}}, sys.argv[1])
"""


def checkpoint_case(c: Campaign) -> Row:
    folder = c.root / "security_checkpoint"
    run_dir, marker = folder / "run", folder / MARKER
    c.suite(*KILL, run_dir=run_dir, env={"OPTBENCH_KILL_AT": "step:150"})
    ckpt = run_dir / "checkpoint.pt"
    subprocess.run([sys.executable, "-c", PICKLE_PAYLOAD, str(ckpt), str(marker)], check=True)
    proc = c.suite(*KILL, "resume=true", run_dir=run_dir)
    observed, ok = refusal(proc, run_dir, ("checkpoint.pt",), fresh=False)
    return _row("checkpoint.pt whose pickle calls a function (resume)", marker, observed, ok)


def yaml_tag_case(c: Campaign) -> Row:
    folder = c.root / "security_yaml"
    run_dir, marker = folder / "run", folder / MARKER
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(
        f"seed: !!python/object/apply:pathlib.Path.touch [{json.dumps(str(marker))}]\n"
    )
    proc = c.suite(*FAST, "steps=5", "resume=true", run_dir=run_dir)
    observed, ok = refusal(proc, run_dir, ("config.yaml",), fresh=False)
    return _row("config.yaml with a !!python tag (resume)", marker, observed, ok)


def _tool(c: Campaign, module: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=c.env,
    )
    proc.stderr = proc.stderr.replace(str(c.root), "<tmp>")
    return proc


def _one_line(proc: subprocess.CompletedProcess, words: tuple[str, ...]) -> tuple[str, bool]:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    ok = proc.returncode == 2 and "Traceback" not in proc.stderr and len(errors) == 1
    ok = ok and all(w in proc.stderr for w in words)
    return f"exit {proc.returncode}: {brief(headline(proc.stderr), 100)}", ok


def compare_case(c: Campaign) -> Row:
    folder = c.root / "security_compare"
    marker = folder / MARKER
    study = folder / "baselines" / "toy" / "sgd"
    study.mkdir(parents=True)
    budget = {
        "task": "toy", "steps": 5, "evals": 1, "sampler": "sobol", "sampler_seed": 0,
        "tune_seed": 0, "trials": 1, "rerun_seeds": [1, 2, 3],
        "extra": ["threads=1", f"+optimizer.weight_decay={_target(marker)}"],
    }  # fmt: skip
    meta = {"task": "toy", "optimizer": "sgd", "budget": budget, "reruns": [], "trials": []}
    (study / "study.json").write_text(json.dumps({**meta, "selected": {}}))
    (folder / "baselines" / "targets.json").write_text("{}")
    proc = _tool(c, "suite.tune.compare", "--optimizer", "adamw", "--out", str(folder / "out"),
                 "--baselines", str(folder / "baselines"))  # fmt: skip
    observed, ok = _one_line(proc, ("refused",))
    return _row("study.json budget.extra with _target_ (make compare)", marker, observed, ok)


STUDY_DB = """
import sys, optuna
from pathlib import Path
from suite.tune.study import open_study
from suite.tune.study_config import StudyConfig
cfg = StudyConfig("toy", "sgd", 1, Path(sys.argv[1]), steps=5)
study = open_study(cfg)
study.add_trial(optuna.trial.create_trial(value=0.0, user_attrs={
    "overrides": [f"optimizer.weight_decay={sys.argv[2]}"], "run_dir": "trials/0000",
    "values": {}}))
"""


def study_db_case(c: Campaign, ref: Path) -> Row:
    folder = c.root / "security_study_db"
    out, marker = folder / "out", folder / MARKER
    out.mkdir(parents=True)
    shutil.copytree(ref, out / "trials" / "0000")  # a complete record for the stored trial
    subprocess.run(
        [sys.executable, "-c", STUDY_DB, str(out), _target(marker)], cwd=REPO, check=True,
        capture_output=True, env=c.env,
    )  # fmt: skip
    proc = _tool(c, "suite.tune", "--task", "toy", "--optimizer", "sgd", "--trials", "1",
                 "--steps", "5", "--out", str(out))  # fmt: skip
    observed, ok = _one_line(proc, ("refused",))
    return _row("study.db stored overrides with _target_ (tune resumed)", marker, observed, ok)


OVERRIDES = [
    ("hparam", ("optimizer.weight_decay=@M",)),
    ("list", ("optimizer=adamw", "optimizer.betas=[@M,0.999]")),
    ("task", ("+task.extra=@M",)),
    ("schedule", ("+schedule.extra=@M",)),
]
