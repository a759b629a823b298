"""The GPU tier (``make bench PROFILE=gpu``): the CPU tier's choices rerun at full budgets.

Tuning 13 optimizers on 5 workloads again at full budgets (16 trials each) does not fit a
GPU loan of about 10 minutes. The GPU tier therefore takes each optimizer's point chosen on
val by the CPU tier (``<select_from>/<task>/<optimizer>/selected.json``: pooled over its
independent studies, never read from test) and reruns it on the GPU at the workload's full
budget (the task's default steps, full eval sets, a wider ViT and LM: the protocol file
``suite/conf/protocol/gpu.yaml``). Its hyperparameters were tuned at the CPU tier's short
budget and smaller models: the tier measures how the CPU choices carry over, and its
report says so. The target is set as in the CPU tier, apart from scoring: the reference's
chosen point rerun at the target seeds, the median of their best val metric.

Runs go ``--jobs`` at a time (small models share one GPU), each a warm fork
(:mod:`suite.tune.warm`) through the same :func:`suite.tune.launch.launch` as every study;
a finished record is kept, an unfinished one set aside as ``<name>.killed-<n>`` (resumable).
Nothing read from the CPU tier runs code: a selection's overrides are checked against
the keys a run accepts (``check_optimizer_overrides``) before any run starts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from suite.record import atomic_write_text, read_jsonl
from suite.report.read.scored import best_value
from suite.report.read.targets import Target
from suite.tune.launch import run_or_reuse
from suite.tune.protocol import read_protocol
from suite.tune.space import CONF
from suite.tune.study_config import StudyConfig, StudyError, check_optimizer_overrides


@dataclass(frozen=True)
class Transfer:
    """A transfer tier as ``suite/conf/protocol/<name>.yaml`` states it (``select_from``)."""

    name: str
    out: Path
    select_from: Path
    reference: str
    rerun_seeds: tuple[int, ...]
    target_seeds: tuple[int, ...]
    evals: int
    run_overrides: tuple[str, ...]
    optimizers: tuple[str, ...]
    workloads: dict

    @classmethod
    def load(cls, name: str, conf: Path = CONF) -> Transfer:
        return cls.from_mapping(name, read_protocol(name, conf))

    @classmethod
    def from_mapping(cls, name: str, raw: dict) -> Transfer:
        if "select_from" not in raw:
            raise StudyError(f"protocol {name!r} has no select_from: it is a tuning tier")
        return cls(
            name,
            Path(raw["out"]),
            Path(raw["select_from"]),
            str(raw["reference"]),
            tuple(int(s) for s in raw["rerun_seeds"]),
            tuple(int(s) for s in raw["target_seeds"]),
            int(raw["evals"]),
            tuple(raw["run_overrides"]),
            tuple(raw["optimizers"]),
            dict(raw["workloads"]),
        )

    def config(self, task: str, optimizer: str) -> StudyConfig:
        w = self.workloads[task]
        return StudyConfig(
            task=task,
            optimizer=optimizer,
            trials=1,
            out=self.out / task / optimizer,
            steps=int(w["steps"]),
            evals=self.evals,
            extra=self.run_overrides + tuple(w.get("overrides", ())),
            reruns=False,
        )

    def selections(self) -> dict[tuple[str, str], list[str]]:
        """Every (task, optimizer)'s chosen overrides, checked; one line naming what is missing."""
        out, missing = {}, []
        for task in self.workloads:
            for opt in self.optimizers:
                path = self.select_from / task / opt / "selected.json"
                if not path.is_file():
                    missing.append(f"{task}/{opt}")
                    continue
                overrides = json.loads(path.read_text()).get("overrides")
                if not (isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)):
                    raise StudyError(f"{path}: overrides must be a list of strings")
                cfg = self.config(task, opt)
                out[task, opt] = check_optimizer_overrides(cfg, overrides, "a selection", str(path))
        if missing:
            raise StudyError(
                f"{len(missing)} selections missing under {self.select_from} (e.g. "
                f"{', '.join(missing[:3])}): finish that tier first (make campaign)"
            )
        return out


def run(t: Transfer, jobs: int, log=print) -> int:
    """Every target-setting and scored run not yet finished, ``jobs`` at a time; then each
    workload's ``target/target.json``. 0 when all are done."""
    chosen = t.selections()
    work = []  # (config, seed, overrides, run_dir)
    for task in t.workloads:
        ref = t.config(task, t.reference)
        work += [
            (ref, s, chosen[task, t.reference], t.out / task / "target" / f"s{s}")
            for s in t.target_seeds
        ]
        for opt in t.optimizers:
            cfg = t.config(task, opt)
            work += [
                (cfg, s, chosen[task, opt], cfg.out / "reruns" / f"s{s}") for s in t.rerun_seeds
            ]
    start, finished = time.perf_counter(), 0

    def one(item) -> None:
        nonlocal finished
        cfg, seed, overrides, run_dir = item
        s = run_or_reuse(cfg, seed, overrides, run_dir)
        finished += 1
        eta = (time.perf_counter() - start) / finished * (len(work) - finished) / 60
        log(
            f"{finished}/{len(work)} {cfg.task}/{cfg.optimizer} s{seed}: {s['status']} | ETA {eta:.1f} min"
        )

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, work))
    for task in t.workloads:
        folder = t.out / task / "target"
        own = json.loads((folder / f"s{t.target_seeds[0]}" / "summary.json").read_text())["target"]
        metric = Target(own["metric"], float(own["value"]), own["direction"])
        values = [
            best_value(read_jsonl(folder / f"s{s}" / "metrics.jsonl"), metric)
            for s in t.target_seeds
        ]
        target = {
            "metric": own["metric"],
            "direction": own["direction"],
            "value": statistics.median(values),
            "reference": t.reference,
            "overrides": chosen[task, t.reference],
            "seeds": list(t.target_seeds),
            "values": values,
            "procedure": (
                f"the reference's point chosen on val in {t.select_from}, rerun at the full "
                "budget at the target seeds (never scored); the median of their best val metric"
            ),
        }
        atomic_write_text(folder / "target.json", json.dumps(target, indent=2) + "\n")
        log(f"[{task}] target {own['metric']} {target['value']:.4g}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m suite.tune.transfer", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--protocol", default="gpu")
    ap.add_argument("--jobs", type=int, default=8, help="runs at a time (they share the GPU)")
    ap.add_argument("--out", type=Path, help="override the protocol's out folder")
    ap.add_argument("--select-from", type=Path, help="override the protocol's select_from")
    ap.add_argument("--set", nargs="*", default=[], help="further overrides for every run")
    args = ap.parse_args(argv)
    try:
        t = Transfer.load(args.protocol)
        t = Transfer(
            t.name,
            args.out or t.out,
            args.select_from or t.select_from,
            t.reference,
            t.rerun_seeds,
            t.target_seeds,
            t.evals,
            t.run_overrides + tuple(args.set),
            t.optimizers,
            t.workloads,
        )
        return run(t, args.jobs, log=lambda line: print(line, flush=True))
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
