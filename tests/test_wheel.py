"""README "Benchmark your own optimizer", from a wheel: built from the checkout, installed
with --no-deps in a fresh venv layered over the suite's environment, then `optbench run`,
the Python API and a tiny `optbench compare` from a folder outside the checkout, with a
user's optimizer class and YAML. Nothing of the checkout is importable there.

Slow (about 3-5 minutes on 2 shared cores: 9 runs of task=toy).
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

MY_OPT = '''\
import torch


class LrFreeSign(torch.optim.Optimizer):
    """p <- p - lr * sign(m), m = beta m + (1 - beta) g; lr = 1 by default (lr-free style)."""

    def __init__(self, params, lr=1.0, beta=0.9):
        super().__init__(params, dict(lr=lr, beta=beta))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("m", torch.zeros_like(p))
                m.mul_(group["beta"]).add_(p.grad, alpha=1 - group["beta"])
                p.add_(m.sign(), alpha=-group["lr"] * 1e-2)
'''

MY_YAML = """\
_entry_:
  family: signsgd
  state_bits: 8        # a false claim: its state is float32
_target_: my_opt.LrFreeSign
beta: 0.9
"""


def _sh(cmd: list[str], cwd: Path, env: dict, timeout: int = 900) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{cmd}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout + done.stderr


def test_a_wheel_runs_and_compares_a_users_optimizer_outside_the_checkout(tmp_path):
    # the checkout's files (tracked and new, not ignored), copied: the build leaves it untouched
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    src = tmp_path / "src"
    for f in files:
        if (ROOT / f).is_file() and not (ROOT / f).is_symlink():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            (src / f).write_bytes((ROOT / f).read_bytes())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    pip = [sys.executable, "-m", "pip"]
    _sh(
        [*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", "dist", "-q"],
        tmp_path,
        env,
    )
    (wheel,) = (tmp_path / "dist").glob("optbench-*.whl")
    # a fresh venv over the suite's environment: its site-packages after the venv's own
    _sh([sys.executable, "-m", "venv", "--system-site-packages", "venv"], tmp_path, env)
    py = tmp_path / "venv" / "bin" / "python"
    venv_site = subprocess.run(
        [py, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True
    ).stdout.strip()
    Path(venv_site, "zz_suite_env.pth").write_text(site.getsitepackages()[0] + "\n")
    _sh([py, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], tmp_path, env)
    env["PATH"] = f"{tmp_path / 'venv' / 'bin'}{os.pathsep}{env['PATH']}"

    user = tmp_path / "project"  # the researcher's folder, outside the checkout
    (user / "mine" / "optimizer").mkdir(parents=True)
    (user / "my_opt.py").write_text(MY_OPT)
    (user / "mine" / "optimizer" / "lrfree.yaml").write_text(MY_YAML)
    where = _sh([py, "-c", "import suite, optbench; print(suite.__file__)"], user, env)
    assert where.strip().startswith(venv_site), where  # the wheel's suite, not the checkout's

    run = ["task=toy", "steps=20", "logger=none", "progress=none", "threads=1"]
    _sh(["optbench", "run", *run, "hydra.run.dir=r_adamw"], user, env)
    out = _sh(
        [
            "optbench",
            "run",
            "--config-dir",
            "mine",
            "optimizer=lrfree",
            *run,
            "hydra.run.dir=r_mine",
        ],
        user,
        env,
    )
    assert out.count("claims state_bits 8 but its state measures 32") == 1
    summary = json.loads((user / "r_mine" / "summary.json").read_text())
    assert summary["constructor"]["arguments"] == {"lr": 1.0, "beta": 0.9}
    assert summary["optimizer_entry"]["class"] == "my_opt.LrFreeSign"
    env_json = json.loads((user / "r_mine" / "env.json").read_text())
    assert (
        env_json["packages"]["optbench"] == "0.1.0" and env_json["optimizer"]["module"] == "my_opt"
    )

    api = "import optbench, my_opt; r = optbench.run(my_opt.LrFreeSign, {'beta': 0.8}, out='r_api', steps=20, overrides=['threads=1']); print('API', r.path, r.verdict)"
    assert "API r_api ok" in _sh([py, "-c", api], user, env)

    base = ["-m", "suite.tune.baselines", "--out", "base", "--tasks", "toy:20"]
    _sh([py, *base, "--optimizers", "sgd", "--trials", "1"], user, env)
    cmp = ["optbench", "compare", "--config-dir", "mine", "--optimizer", "lrfree"]
    out = _sh([*cmp, "--out", "cmp", "--baselines", "base"], user, env)
    assert "leaderboard written to cmp/report.md" in out
    study = json.loads((user / "cmp" / "studies" / "toy" / "lrfree" / "study.json").read_text())
    assert study["search_space"]["lr"] == {"path": "lr", "type": "log", "low": 0.01, "high": 100.0}
    board = (user / "cmp" / "leaderboard.csv").read_text()
    assert "lrfree" in board and "sgd" in board
    assert (user / "cmp" / "plots" / "loss_curves.png").is_file()
