"""Warm runs: every trial and rerun of a study forks from one process that has already
imported the suite, so a run no longer pays Python's start and torch/timm/transformers
imports (about 10 s of a 40-50 s CPU-tier run on this machine, measured with
``python -X importtime`` and cProfile on 2026-12-05).

The run itself is unchanged: the child is a fresh process (a fork of a
``multiprocessing`` fork server that imported :data:`PRELOAD` and nothing else: no
torch thread pool, no Hydra state, no data), it takes this process's working directory
and environment as they are at launch, writes stdout and stderr to the run's log, and
calls ``suite.run``'s Hydra main with the same arguments the ``python -m suite.run``
command line would have (``sys.argv``). Its exit code is the run's: 2 for refused input.
It dies with the study: the fork server exits when the study's process does (it watches
a pipe whose write end only the study holds: each child closes the copy it inherits, else
a live run would keep its own server alive, and the server would keep the run alive
through ``workers.die_with_parent``, after the study was killed). Where the platform has no fork server, :func:`run` starts
``python -m suite.run`` as before. ``tests/test_warm.py`` checks that a warm run and a
cold one write the same metrics, bit for bit.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

from suite.optim import provenance
from suite.tune import workers

PRELOAD = [  # what every run imports; an entry's optimizer library is imported by its run
    "suite.run",
    "suite.tune.warm",
    "timm.models.resnet",
    "timm.models.vision_transformer",
    "transformers.models.gpt2.modeling_gpt2",
]
_context: mp.context.BaseContext | None = None
provenance.distributions()  # every run's record asks it; in the fork server, asked once


def available() -> bool:
    """Whether runs can start warm here (a fork server: Linux and macOS)."""
    return "forkserver" in mp.get_all_start_methods()


def _fork_server() -> mp.context.BaseContext:
    global _context
    if _context is None:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _context = ctx
    return _context


def _child(args: list[str], out: str, err: str, cwd: str, env: dict[str, str]) -> None:
    """In the forked child: become ``python -m suite.run <args>`` writing to out and err."""
    from multiprocessing import forkserver

    alive = getattr(forkserver._forkserver, "_forkserver_alive_fd", None)  # noqa: SLF001
    if alive is not None:  # the server's liveness pipe: only the study may hold it open
        os.close(alive)
        forkserver._forkserver._forkserver_alive_fd = None  # noqa: SLF001
    for path, fileno in ((out, 1), (err, 2)):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(fd, fileno)
        os.close(fd)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    workers.die_with_parent()
    import suite.run

    sys.argv = [suite.run.__file__, *args]  # what ``python -m suite.run`` would see
    suite.run.cli()


def run(
    args: list[str],
    log: Path,
    err: Path | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Run ``python -m suite.run <args>`` to its end, its stdout appended to ``log`` and its
    stderr to ``err`` (default: ``log`` too), in ``cwd`` with ``env`` (default: this
    process's, at this call); its exit code."""
    cwd, env = str(cwd or os.getcwd()), dict(os.environ if env is None else env)
    err = err or log
    if not available():
        with open(log, "a") as out, open(err, "a") as errf:
            cmd = [sys.executable, "-m", "suite.run", *args]
            return subprocess.run(
                cmd, stdout=out, stderr=errf, cwd=cwd, env=env, preexec_fn=workers.die_with_parent
            ).returncode
    child = _fork_server().Process(target=_child, args=(list(args), str(log), str(err), cwd, env))
    child.start()
    child.join()
    return child.exitcode if child.exitcode is not None else 1
