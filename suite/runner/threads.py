"""Torch threads per run: no oversubscription when a sweep runs jobs side by side.

A parallel local launcher (Hydra's joblib launcher, ``hydra/launcher=joblib``) runs up to
``n_jobs`` runs at once on one machine, each with torch's default thread count (every
core): ``jobs x threads`` threads then compete for the cores, and each OpenMP region
waits for descheduled peers. So unless the run's ``threads`` says otherwise, a run under
such a launcher takes

.. math::  \\text{threads} = \\max\\bigl(1, \\lfloor \\text{cores} / \\min(n_{jobs}, \\text{cores}) \\rfloor\\bigr)

(``cores``: the CPUs this process may run on; ``n_jobs = -1`` means all of them, -2 all
but one, as in joblib), so ``jobs x threads <= cores``. The run record's ``env.json``
``torch_threads`` says what was used. Launchers that put each run on its own machine or
allocation (submitit, Slurm) and single runs keep torch's default.
"""

from __future__ import annotations

import os

__all__ = ["PARALLEL_LAUNCHERS", "cores", "threads_for_run"]

# Launchers (their _target_) that run several jobs at once on this machine.
PARALLEL_LAUNCHERS = ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",)


def cores() -> int:
    """CPUs this process may run on (its affinity mask, which a container or taskset sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_for_run(threads: int | None, launcher: dict | None = None) -> int | None:
    """The torch thread count a run should set: ``threads`` if the user set it; for a job
    of a parallel local launcher (``launcher``: Hydra's launcher config, default: the
    current job's), ``cores // jobs``; None (torch's default) otherwise."""
    if threads is not None:
        return int(threads)
    if launcher is None:
        launcher = _current_launcher()
    if not launcher or launcher.get("_target_") not in PARALLEL_LAUNCHERS:
        return None
    n = cores()
    jobs = int(launcher.get("n_jobs") or -1)
    jobs = n + 1 + jobs if jobs < 0 else jobs  # joblib: -1 all cores, -2 all but one, ...
    return max(1, n // max(1, min(jobs, n)))


def _current_launcher() -> dict | None:
    """This job's launcher config when Hydra runs it as part of a multirun, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return None
    return OmegaConf.to_container(hydra.launcher, resolve=True)
