"""One tuning study: an Optuna search over an optimizer's ``_search_`` space on one task.

Every trial is an ordinary run through the real entry point
(``python -m suite.run ... hydra.run.dir=<out>/trials/<n>``) that writes its own record;
the objective reads that record (:mod:`suite.tune.objective`: time to the val target,
else the best val metric). When the study holds ``trials`` complete trials, the best
one is rerun with fresh seeds (``<out>/reruns/s<seed>``), and ``study.json`` and
``selected.yaml`` say what was searched, what was found and where every record is.

Resumable: the study lives in Optuna storage (``sqlite:///<out>/study.db`` by default, or
any RDB URL that many machines share). Each trial sends a heartbeat; a trial whose worker
was killed is marked failed once its heartbeat is older than the grace period, and its
hyperparameters are queued again (``RetryHeartbeatStaleTrialCallback``), so a rerun of the same
command continues where the killed one stopped and never overwrites a record.

Here: the search, the selection, the reruns and ``study.json``. What a study is and its
checks: :mod:`suite.tune.study_config`; one run to its end: :mod:`suite.tune.launch`.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from suite import trust
from suite.record import atomic_write_text, read_summary
from suite.tune import objective, study_file, workers
from suite.tune.launch import RunCrashed, finished, launch
from suite.tune.space import Param, load_config, overrides, suggest
from suite.tune.study_config import StudyConfig, StudyError, check_optimizer_overrides

# QMCSampler and trial heartbeats are marked experimental by Optuna; they are what we use.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

WAIT_S = 2.0  # how often a worker whose budget is taken looks again


def _sampler(cfg: StudyConfig) -> optuna.samplers.BaseSampler:
    if cfg.sampler == "sobol":  # AlgoPerf's quasi-random search; the first point is seeded random
        return optuna.samplers.QMCSampler(
            qmc_type="sobol",
            scramble=True,
            seed=cfg.sampler_seed,
            independent_sampler=optuna.samplers.RandomSampler(seed=cfg.sampler_seed),
            warn_independent_sampling=False,
        )
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=cfg.sampler_seed)
    return optuna.samplers.RandomSampler(seed=cfg.sampler_seed)


def open_study(cfg: StudyConfig) -> optuna.Study:
    """Create the study or load it; a resumed study must have the same budget."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    if (path := study_file.sqlite_path(cfg.storage_url)) is not None:
        study_file.create_small(path)  # 512-byte pages: a four-trial study in 24 KiB, not 112
    try:  # a corrupt, locked or foreign database: one line naming it, not 76
        storage = RDBStorage(
            cfg.storage_url,
            heartbeat_interval=cfg.heartbeat_s,
            grace_period=cfg.grace_s,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
        )
        study = optuna.create_study(
            study_name=cfg.name,
            storage=storage,
            sampler=_sampler(cfg),
            direction="minimize",
            load_if_exists=True,
        )
        budget = study.user_attrs.get("budget")
    except Exception as e:  # noqa: BLE001  sqlalchemy, optuna and sqlite errors alike
        reason = " ".join(str(getattr(e, "orig", None) or e).split())[:200]
        raise StudyError(
            f"cannot open the study storage {cfg.storage_url} ({type(e).__name__}: {reason}); "
            "if it is locked, wait for the other worker; if it is corrupt or not an Optuna "
            "study, move it away or use another OUT"
        ) from None
    if budget is None:
        study.set_user_attr("budget", cfg.budget())
    elif budget != cfg.budget():
        diff = {k: (budget.get(k), v) for k, v in cfg.budget().items() if budget.get(k) != v}
        raise StudyError(
            f"study {cfg.name} in {cfg.storage_url} was made with another budget "
            f"(stored, given): {diff}; use another OUT or the same options"
        )
    return study


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def search(cfg: StudyConfig, space: list[Param], study: optuna.Study, log=print) -> None:
    """Run trials until the study holds ``cfg.trials`` complete ones."""
    base = load_config(cfg.optimizer, cfg.optimizer_conf)
    fixed = cfg.fixed_hparams()

    def trial_objective(trial: optuna.Trial) -> float:
        if workers.budget_taken(study, cfg.trials, before=trial.number):
            raise optuna.TrialPruned("the budget is taken by another worker's trials")
        values = suggest(trial, space)
        ovr = overrides(base, values) + [f"optimizer.{k}={v}" for k, v in fixed.items()]
        run_dir = cfg.out / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir.relative_to(cfg.out)))
        trial.set_user_attr("overrides", ovr)
        trial.set_user_attr("values", values)
        summary = launch(cfg, cfg.tune_seed, ovr, run_dir)
        value = objective.objective_value(summary)
        trial.set_user_attr("status", summary["status"])
        log(f"trial {trial.number}: {' '.join(ovr)} -> {summary['status']}, objective {value:.4g}")
        return value

    crashes = 0
    while len(_complete(study)) < cfg.trials:
        if workers.budget_taken(study, cfg.trials):  # another worker runs the last trials
            time.sleep(WAIT_S)
            continue
        before = len(_complete(study))
        n = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        study.optimize(trial_objective, n_trials=1, catch=(RunCrashed,))
        failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))) > n
        crashes = 0 if len(_complete(study)) > before else crashes + failed
        if crashes >= 3:
            raise StudyError(f"three trials in a row ended without a summary; see {cfg.out}/logs")


def _trial_dir(cfg: StudyConfig, t: optuna.trial.FrozenTrial) -> Path:
    """A trial's run folder as stored in the study, refused if it leaves ``cfg.out``."""
    try:
        return trust.inside(cfg.out, t.user_attrs.get("run_dir"), f"trial {t.number}'s run_dir")
    except ValueError as e:
        raise StudyError(f"{cfg.storage_url}: {e}") from None


def check_stored_overrides(cfg: StudyConfig, t: optuna.trial.FrozenTrial) -> None:
    """A stored trial's overrides (read back from study.db) set only this optimizer's
    hyperparameters to plain values: StudyError otherwise, before any run starts."""
    check_optimizer_overrides(
        cfg, t.user_attrs.get("overrides") or [], f"trial {t.number}'s stored", cfg.storage_url
    )


def _trial_row(cfg: StudyConfig, t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    row = {
        "number": t.number,
        "state": t.state.name,
        "values": t.user_attrs.get("values"),
        "overrides": t.user_attrs.get("overrides"),
        "run_dir": t.user_attrs.get("run_dir"),
        "objective": _plain(t.value),
    }
    if t.state == TrialState.COMPLETE:
        s = read_summary(_trial_dir(cfg, t))
        row.update(_outcome(s))
    return row


def _outcome(s: dict) -> dict[str, Any]:
    return {
        "status": s["status"],
        "reached": objective.reached(s),
        "steps_to_target": s.get("steps_to_target"),
        "seconds_to_target": s.get("seconds_to_target"),
        "target": s["target"],
        "best_target_metric": _plain(objective.best_metric(s)),
        "max_steps": s.get("max_steps"),
    }


def select(cfg: StudyConfig, study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The best complete trial by :func:`objective.rank_key` of its record (trial number breaks ties)."""
    trials = _complete(study)
    return min(
        trials,
        key=lambda t: (
            *objective.rank_key(read_summary(_trial_dir(cfg, t))),
            t.number,
        ),
    )


def rerun(cfg: StudyConfig, best: optuna.trial.FrozenTrial, log=print) -> list[dict]:
    """The selected hyperparameters with fresh seeds (see :func:`rerun_seed`)."""
    overrides = best.user_attrs["overrides"]
    return [rerun_seed(cfg, seed, overrides, log)[0] for seed in cfg.rerun_seeds]


def rerun_seed(cfg: StudyConfig, seed: int, overrides: list[str], log=print) -> tuple[dict, bool]:
    """One seed at ``overrides`` and whether it ran now; a finished rerun is kept (False), a
    killed one is left where it is and the seed runs again in ``s<seed>.<attempt>``."""
    run_dir = cfg.out / "reruns" / f"s{seed}"
    attempt = 1
    while run_dir.exists() and not finished(run_dir):
        if workers.running(run_dir):  # never a second run of a seed beside a live one
            raise StudyError(f"{run_dir} is still running; wait for it, or stop it first")
        attempt += 1
        run_dir = cfg.out / "reruns" / f"s{seed}.{attempt}"
    s = read_summary(run_dir) if run_dir.exists() else None
    ran = s is None
    if ran:
        s = launch(cfg, seed, overrides, run_dir)
        log(f"rerun seed {seed}: {s['status']}, steps to target {s.get('steps_to_target')}")
    row = {"seed": seed, "run_dir": str(run_dir.relative_to(cfg.out)), **_outcome(s)}
    return row, ran


def write_result(
    cfg: StudyConfig, study: optuna.Study, space: list[Param], best, reruns, seconds: float
) -> dict:
    """``study.json`` (everything) and ``selected.yaml`` (the chosen hyperparameters)."""
    base = load_config(cfg.optimizer, cfg.optimizer_conf)
    best_summary = read_summary(_trial_dir(cfg, best))
    result = {
        "protocol": 1,
        "task": cfg.task,
        "optimizer": cfg.optimizer,
        "study_name": cfg.name,
        "storage": cfg.storage_url if cfg.storage is None else "(given RDB URL)",
        "budget": {**cfg.budget(), "trials": cfg.trials, "rerun_seeds": list(cfg.rerun_seeds)},
        "search_space": {
            p.path: {k: v for k, v in asdict(p).items() if v is not None} for p in space
        },
        "fixed_by_task": cfg.fixed_hparams(),
        "objective": objective.__doc__.strip().split("\n\n")[1],
        "selection_split": best_summary["target"]["metric"].split("/", 1)[0],
        "trials": [_trial_row(cfg, t) for t in study.get_trials(deepcopy=False)],
        "selected": {
            "trial": best.number,
            "values": best.user_attrs["values"],
            "overrides": best.user_attrs["overrides"],
            "hparams": best_summary["hparams"],
        },
        "reruns": reruns,
        "wall_seconds_this_invocation": seconds,
    }
    text = json.dumps(result, indent=2, default=_json_default) + "\n"
    atomic_write_text(cfg.out / "study.json", text)  # a kill leaves the old file or the new
    selected = {
        "task": cfg.task,
        "optimizer": cfg.optimizer,
        "trial": best.number,
        "overrides": best.user_attrs["overrides"],
        "hparams": best_summary["hparams"],
        "base": {k: v for k, v in base.items() if not k.startswith("_")},
    }
    atomic_write_text(cfg.out / "selected.yaml", yaml.safe_dump(selected, sort_keys=False))
    return result


def _plain(x: float | None) -> float | str | None:
    """JSON has no NaN or inf: they are written as "nan" / "inf", as record.py does."""
    return str(x) if isinstance(x, float) and not math.isfinite(x) else x


def _json_default(x: Any) -> Any:
    return str(x)


def tune(cfg: StudyConfig, log=print, reruns_by=None) -> dict:
    """Search, select, rerun, write: the whole protocol for one task x optimizer.

    ``reruns_by(cfg, best, log) -> rows`` replaces :func:`rerun` (``make compare`` interleaves
    the candidate's reruns with a reference control)."""
    space = cfg.check()
    start = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(cfg)
    done = len(_complete(study))
    log(f"study {cfg.name}: {done}/{cfg.trials} trials complete ({cfg.storage_url})")
    search(cfg, space, study, log)
    best = select(cfg, study)
    check_stored_overrides(cfg, best)  # study.db may come from someone else: nothing runs unchecked
    log(f"selected trial {best.number}: {' '.join(best.user_attrs['overrides'])}")
    metric = read_summary(_trial_dir(cfg, best))["target"]["metric"]
    if not metric.startswith(objective.VAL):
        log(f"warning: {cfg.task}'s target {metric} is not on the val split; selection used it")
    reruns = (reruns_by or rerun)(cfg, best, log) if cfg.reruns else []
    return write_result(cfg, study, space, best, reruns, time.perf_counter() - start)
