"""`make bench [PROFILE=quick|full|nightly]`: run a profile's sweep, then its report.

A profile (conf/bench/<name>.yaml) lists tasks (with per-task overrides), optimizers
and seeds. Before anything runs, every task is built once so that missing data or a
missing GPU is reported up front with what to do. Each task is then one Hydra
multirun (`python -m suite.run -m ...`) into runs/bench/<profile>/<stamp>/<task>, and
the report over the whole sweep is written to results/<profile>/ (the runs stay).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from suite.data import DatasetError
from suite.optim.registry import REGISTRY
from suite.runner.env import environment
from suite.tasks import task_from_config

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "suite" / "conf"


def load_profile(name: str) -> dict:
    path = CONF / "bench" / f"{name}.yaml"
    valid = sorted(p.stem for p in (CONF / "bench").glob("*.yaml"))
    if not path.is_file():
        raise SystemExit(f"error: unknown bench profile {name!r}; valid: {', '.join(valid)}")
    profile = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    tasks = sorted(p.stem for p in (CONF / "task").glob("*.yaml"))
    for task in profile["tasks"]:
        if task not in tasks:
            raise SystemExit(
                f"error: profile {name}: unknown task {task!r}; valid: {', '.join(tasks)}"
            )
    for opt in profile["optimizers"]:
        if opt not in REGISTRY:
            raise SystemExit(
                f"error: profile {name}: unknown optimizer {opt!r}; valid: {', '.join(sorted(REGISTRY))}"
            )
    return profile


def preflight(profile: dict) -> None:
    """Fail before any run if the device or a task's data is missing, saying how to fix it."""
    if profile["device"] == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "error: this profile needs a CUDA GPU and none is available; "
            "run `make bench` (PROFILE=quick) on CPU"
        )
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for task in profile["tasks"]:
            cfg = compose(config_name="config", overrides=[f"task={task}"])
            try:
                task_from_config(OmegaConf.to_container(cfg.task, resolve=True), cfg.data.root)
            except DatasetError as e:
                raise SystemExit(
                    f"error: task {task} needs data that is missing: {e}\n"
                    "  get it online (it downloads itself) or set OPTBENCH_DATA / data.root "
                    "to a folder that holds it (see ../shared/data/MANIFEST.txt)"
                ) from None


def _short(path: Path) -> Path:
    """Paths inside the repository relative to it, so reports and notes read the same anywhere."""
    path = path.absolute()
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m suite.bench.profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("profile", nargs="?", default="quick")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "bench")
    parser.add_argument("--results", type=Path, default=None, help="default: results/<profile>")
    args, rest = parser.parse_known_args(argv)
    if args.profile == "gpu":  # the GPU tier: the CPU tier's choices at full budgets
        from suite.tune.transfer import main as transfer

        out = ["--out", str(args.results)] if args.results else []
        return transfer(["--protocol", "gpu", *out, *rest])
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    profile = load_profile(args.profile)
    preflight(profile)
    if profile.get("protocol") == "tuned":
        return _tuned(args.profile, profile, args.results)

    sweep = _short(args.runs / args.profile / datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    results = _short(args.results or REPO / "results" / args.profile)
    n = len(profile["tasks"]) * len(profile["optimizers"]) * len(profile["seeds"])
    print(
        f"bench {args.profile}: {n} runs ({len(profile['tasks'])} tasks x {len(profile['optimizers'])} "
        f"optimizers x {len(profile['seeds'])} seeds) -> {sweep}",
        flush=True,
    )
    start = time.perf_counter()
    for i, (task, overrides) in enumerate(profile["tasks"].items(), 1):
        cmd = [
            sys.executable,
            "-m",
            "suite.run",
            "-m",
            f"task={task}",
            f"optimizer={','.join(profile['optimizers'])}",
            f"seed={','.join(str(s) for s in profile['seeds'])}",
            f"device={profile['device']}",
            *[f"{k}={v}" for k, v in (overrides or {}).items()],
            *profile.get("overrides", []),
            f"hydra.sweep.dir={sweep / task}",
        ]
        print(
            f"[{i}/{len(profile['tasks'])}] {task} ({time.perf_counter() - start:.0f}s elapsed)",
            flush=True,
        )
        subprocess.run(cmd, cwd=REPO, check=True)
    wall = time.perf_counter() - start

    subprocess.run(
        [
            sys.executable,
            "-m",
            "suite.report",
            str(sweep),
            "--out",
            str(results),
            "--force",
            "--title",
            f"optbench {args.profile} ({profile['description']})",
        ],
        cwd=REPO,
        check=True,
    )
    env = environment(torch.device(profile["device"]))
    (REPO / results / "COMMAND.md").write_text(
        f"# How these tables were made\n\n```\nmake bench PROFILE={args.profile}\n```\n\n"
        f"- runs: `{sweep}` ({n} runs)\n"
        f"- sweep wall time: {wall:.0f} s\n- date (UTC): {env['time_utc']}\n"
        f"- device: {env['device']} ({env['device_name']}, {env['cpu_count']} CPUs, "
        f"{env['torch_threads']} torch threads)\n- git: {env['git_commit']}\n"
        f"- versions: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v) + "\n"
    )
    print(f"bench {args.profile}: {n} runs in {wall:.0f} s; report in {results}", flush=True)
    return 0


def _tuned(name: str, profile: dict, results: Path | None) -> int:
    """A profile that is the fair-comparison protocol (``protocol: tuned``): the committed
    tuned baselines (:mod:`suite.tune.baselines`, resumable), with the report in
    results/<profile>. One set of CPU numbers: the baselines' records are these."""
    results = _short(results or REPO / profile.get("report", f"results/{name}"))
    cmd = [
        sys.executable,
        "-m",
        "suite.tune.baselines",
        "--out",
        str(profile["baselines"]),
        "--report",
        str(results),
        "--jobs",
        str(profile["jobs"]),
        "--tasks",
        *profile["tasks"],
        "--optimizers",
        *profile["optimizers"],
    ]
    print(f"bench {name}: the tuned protocol -> {profile['baselines']}, report in {results}")
    subprocess.run(cmd, cwd=REPO, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
