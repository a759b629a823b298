"""Hydra entry point: compose one run, build task and optimizer, train, record.

    python -m suite.run task=cnn_digits optimizer=adamw8bit seed=1
    python -m suite.run -m optimizer=adamw,torch_adamw seed=0,1,2

Everything that can be checked is checked before the first step: the command line's
group options (``runner.command_line``), then the composed config in one pass
(``runner.schema.check``: keys, types, ranges, the optimizer entry and its
hyperparameters), then what needs building (the data files, the memory, the optimizer
on the real model's groups). A refusal is one ``ConfigError`` line on stderr and exit
code 2 (in a sweep, the other runs go on). A failure during training is recorded as
status ``failed``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import traceback
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from suite import record
from suite.data import DatasetError
from suite.optim import entry, provenance
from suite.runner import (
    command_line,
    distributed,
    interrupt,
    memory_estimate,
    preflight,
    run_folder,
    schema,
)
from suite.runner.diagnose import with_family_hint
from suite.runner.distributed import local_device
from suite.runner.env import environment
from suite.runner.lock import RunLock
from suite.runner.progress import make_progress
from suite.runner.schema import ConfigError
from suite.runner.threads import threads_for_run
from suite.runner.wandb_mirror import WandbMirror
from suite.tasks import task_from_config
from suite.train import LoopConfig, train


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda but no CUDA device is available; use device=cpu or auto")
    return torch.device(name)


def loop_config(cfg: DictConfig, default_steps: int) -> LoopConfig:
    steps = int(cfg.steps) if cfg.steps is not None else default_steps
    telemetry_every = cfg.get("telemetry_every") or 0
    warmup = cfg.schedule.get("warmup_steps", 0) or 0
    warmup_steps = int(warmup * steps) if 0 < warmup < 1 else int(warmup)
    eval_every = cfg.eval_every if cfg.eval_every is not None else max(1, steps // 5)
    return LoopConfig(
        steps=steps,
        seed=int(cfg.seed),
        log_every=int(cfg.log_every),
        eval_every=int(eval_every),
        warmup_steps=warmup_steps,
        schedule=cfg.schedule.name,
        min_lr_ratio=float(cfg.schedule.get("min_lr_ratio", 0.1)),
        amp=cfg.amp,
        grad_clip=cfg.grad_clip,
        checkpoint_every=int(cfg.checkpoint_every),
        resume=bool(cfg.resume),
        telemetry_every=telemetry_every,
    )


def constructor_config(optimizer_cfg: DictConfig) -> DictConfig:
    """The optimizer config without the suite's own ``_*_`` keys: what instantiate() builds."""
    keep = {
        k: v
        for k, v in OmegaConf.to_container(optimizer_cfg, resolve=True).items()
        if not (k.startswith("_") and k.endswith("_")) or k in schema.HYDRA_KEYS
    }
    return OmegaConf.create(keep)


def setup(cfg: DictConfig, task_name: str, optimizer_name: str, overrides=()):
    """Check the config in one pass, then build everything a run needs; any refusal is a
    ConfigError of one line, before the first step."""
    checked = schema.check(cfg, task_name, optimizer_name, overrides)  # nothing built yet
    spec, hparams = checked.spec, checked.hparams
    try:
        threads = threads_for_run(cfg.threads)  # a parallel sweep's job: cores // jobs
        if threads is not None:
            torch.set_num_threads(threads)
        device = local_device(resolve_device(cfg.device))
        entry.check_device(spec, device)
        task = task_from_config(
            OmegaConf.to_container(cfg.task, resolve=True), cfg.data.root, device
        )
        loop = loop_config(cfg, task.default_steps)
        if loop.warmup_steps > loop.steps:
            print(
                f"warning: schedule.warmup_steps={loop.warmup_steps} is longer than "
                f"steps={loop.steps}: the peak lr is never reached",
                file=sys.stderr,
                flush=True,
            )
        memory_estimate.check_fits(task, spec.family, spec.state_bits)
        world = distributed.world_size()
        if world > 1 and getattr(task, "batch_size", world) % world:
            raise ValueError(
                f"invalid task.batch_size: {task.batch_size} (must divide by the {world} processes)"
            )
        make_optimizer = entry.builder(
            hydra.utils.instantiate(constructor_config(cfg.optimizer)), spec.target
        )
        # Build once on the real model's groups so invalid hyperparameters fail now, not mid-run.
        entry.validate(make_optimizer, task, float(hparams.get("weight_decay", 0.0)))
    except (ValueError, TypeError, OSError, DatasetError) as e:
        raise ConfigError(f"{task_name}/{optimizer_name}: {e}".splitlines()[0]) from e
    except hydra.errors.InstantiationException as e:
        cause = e.__cause__ or e
        raise ConfigError(f"{task_name}/{optimizer_name}: {cause}".splitlines()[0]) from e
    return spec, task, loop, hparams, make_optimizer


def run(cfg: DictConfig) -> dict:
    hc = HydraConfig.get()
    task_name, optimizer_name = hc.runtime.choices.task, hc.runtime.choices.optimizer
    run_dir = Path(hc.runtime.output_dir)
    spec, task, loop, hparams, make_optimizer = setup(
        cfg, task_name, optimizer_name, hc.overrides.task
    )
    if not loop.resume and interrupt.resumes_itself(run_dir):  # requeued after a preemption
        loop = dataclasses.replace(loop, resume=True)
    if loop.resume:  # a torn or corrupt checkpoint is refused on every rank, never loaded
        preflight.check_checkpoint(run_dir / "checkpoint.pt")
    dist = distributed.init(task.device)
    if not dist.main:  # a data-parallel helper rank: trains its shard, records nothing
        train(
            task,
            make_optimizer,
            loop,
            run_dir,
            weight_decay=float(hparams.get("weight_decay", 0.0)),
            dist=dist,
        )
        return {}
    if loop.resume and (run_dir / "summary.json").exists():
        done = record.read_summary(run_dir)
        if done["status"] in ("ok", "diverged"):  # finished: resuming must not redo or rewrite it
            print(f"[{done['status']}] {run_dir} already finished; nothing to resume", flush=True)
            return done

    record.create_run_dir(run_dir, resume=loop.resume)  # a finished folder: refused, untouched
    if loop.resume:
        run_folder.check_resume_config(run_dir, cfg)
    lock = RunLock(run_dir).acquire()  # noqa: F841  held while this frame lives
    record.create_run_dir(run_dir, resume=loop.resume)  # again, now that no one else can write
    if not (run_dir / "config.yaml").exists():  # a resume keeps the config it was checked against
        record.atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        run_folder.save_hydra_files(run_dir, cfg)
    package = provenance.package_of(spec.target)  # the optimizer's distribution and version
    record.write_json(run_dir / "env.json", {**environment(task.device), "optimizer": package})
    summary = record.Summary(
        schema=1,
        status="running",
        task=task_name,
        optimizer=spec.name,
        impl=spec.impl,
        family=spec.family,
        state_bits=None,  # measured from the state tensors after training
        state_bits_claimed=spec.state_bits,
        hparams=hparams,
        optimizer_entry={"name": spec.name, **package},
        constructor=provenance.resolved_arguments(spec.cls(), hparams, make_optimizer),
        seed=loop.seed,
        max_steps=loop.steps,
        world_size=dist.world,
        target={
            "metric": task.target.metric,
            "value": task.target.value,
            "direction": task.target.direction,
        },
    )
    is_sweep = hc.mode is not None and str(hc.mode) == "RunMode.MULTIRUN"
    mirror = WandbMirror(
        cfg.logger,
        run_dir=run_dir,
        name=run_dir.name,
        config=OmegaConf.to_container(cfg, resolve=True),
        group=Path(hc.sweep.dir).name if is_sweep else None,
        tags=[task_name, spec.name[:64], spec.impl, *cfg.logger.tags],
        decision_file=Path(hc.sweep.dir) / ".wandb_reachable.json" if is_sweep else None,
    )
    start = time.perf_counter()
    with (
        make_progress(cfg.progress, loop.steps, f"{task_name}/{optimizer_name}") as progress,
        interrupt.track(interrupt.StopSignals()) as stop,
    ):
        try:
            measured = train(
                task,
                make_optimizer,
                loop,
                run_dir,
                weight_decay=float(hparams.get("weight_decay", 0.0)),
                log=mirror.log,
                progress=progress,
                dist=dist,
                stop=stop,
            )
            measured.pop("train_seconds")
            weight_decay = float(hparams.get("weight_decay", 0.0))
            measured["diagnosis"] = with_family_hint(
                measured["diagnosis"], spec.family, weight_decay
            )
            summary = dataclasses.replace(summary, **measured, error=None)
            if measured["status"] == "interrupted":
                note = interrupt.note(stop, measured["steps"], bool(loop.checkpoint_every))
                summary = dataclasses.replace(summary, **note)
        except Exception as e:  # recorded, not raised: a sweep goes on with its other runs
            error = f"{type(e).__name__}: {e}".splitlines()[0]
            summary = dataclasses.replace(summary, status="failed", error=error)
            with open(run_dir / "run.log", "a") as log:  # the whole traceback, for the author
                log.write(f"training failed at {time.strftime('%F %T')}:\n{traceback.format_exc()}")
    summary.wall_seconds = time.perf_counter() - start
    claim = provenance.state_bits_check(spec.name, spec.state_bits, summary.state_bits)
    if claim:
        print(claim, flush=True)
        summary.state_bits_claim = claim
    summary.wandb = mirror.finish(summary.to_dict())
    record.write_json(run_dir / "summary.json", summary.to_dict())
    line = f"[{summary.status}] {run_dir}"
    if summary.status == "ok":
        line += f"  final {summary.final}"
    else:
        line += f"  {summary.diagnosis or summary.error}"
    print(line, flush=True)
    return summary.to_dict()


@hydra.main(config_path="pkg://suite.conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        summary = run(cfg)
        if summary.get("status") == "interrupted":  # one line; exit 128+signum, or requeued
            interrupt.finish(summary, Path(HydraConfig.get().runtime.output_dir))
        if summary.get("status") == "failed" and str(HydraConfig.get().mode) != "RunMode.MULTIRUN":
            sys.exit(1)  # recorded, and a single run says so in its exit code too
    except (ConfigError, record.RecordError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sweep = str(HydraConfig.get().mode) == "RunMode.MULTIRUN"
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        run_folder.remove_if_empty(run_dir, run_dir.parent if sweep else preflight.EXISTED)
        if str(HydraConfig.get().mode) != "RunMode.MULTIRUN":
            sys.exit(2)
    except KeyboardInterrupt:  # a SIGINT before the loop (or a second one): nothing recorded
        print("error: interrupted before training started; nothing recorded", file=sys.stderr)
        sys.exit(130)
    except OSError as e:  # the record could not be written: disk full, folder removed
        where = e.filename or HydraConfig.get().runtime.output_dir  # some writers name no file
        what = f"{(e.strerror or str(e)).lower()}: {where}"
        print(
            f"error: cannot write the run record ({what}); every whole line of metrics.jsonl "
            "and the last complete checkpoint are intact: free space, then rerun with resume=true",
            file=sys.stderr,
            flush=True,
        )
        if str(HydraConfig.get().mode) != "RunMode.MULTIRUN":
            sys.exit(1)
    finally:
        distributed.close()


def cli() -> None:
    """``python -m suite.run`` (and a warm run, suite.tune.warm): the command line's checks,
    then Hydra's main."""
    command_line.refuse_unknown_choices(sys.argv[1:])  # task=nope: one line, not Hydra's listing
    main()


if __name__ == "__main__":
    cli()
