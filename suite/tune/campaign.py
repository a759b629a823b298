"""``python -m suite.tune.campaign [--protocol cpu] [--jobs N] [--plan]``: a benchmark tier.

A tier (``suite/conf/protocol/<name>.yaml``) is every optimizer on every workload, tuned in
independent studies, scored on fresh seeds against targets set by runs that are never
scored. Per workload, in this order (a unit runs once what it depends on is done):

1. **studies**: for every optimizer, ``studies`` independent Optuna studies of
   ``trials_per_study`` Sobol trials (study k: sampler seed k, training seed
   ``study_seed_base + k``), each an ordinary study folder ``<out>/<task>/<opt>/study-<k>``.
   Sobol points do not depend on the objective, so studies need no target.
2. **target** (after the reference's studies): the reference optimizer's trial with the
   best val metric over all its studies, rerun at ``target_seeds``
   (``<task>/target/s<seed>``); the target is the median of their best val metric
   (AlgoPerf's rule), written to ``<task>/target/target.json``.
3. **select and rerun** (after the target and the optimizer's studies): the trial whose
   time to that target is shortest (else the smallest shortfall; :func:`stages.time_to_target`)
   over all its studies, ``selected.json``, then ``rerun_seeds`` in ``reruns/s<seed>``:
   the scored runs, paired by seed across optimizers.

Resumable and safe to kill: a finished record is never rerun, an unfinished run folder is
kept under ``<name>.killed-<n>`` and its seed runs again; a study resumes through its
database. Progress and an ETA on the terminal (rich) or as plain lines in a log.
Nothing read from a record is instantiated: overrides are rebuilt from the values of the
search space, which are numbers.

Here: the executor and its CLI. The tier is :mod:`suite.tune.protocol`, the units, their
order and price :mod:`suite.tune.plan`, what the target, budget and rerun units do
:mod:`suite.tune.stages`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from suite.tune.plan import Unit, budget_ok, done, estimate, plan, ready
from suite.tune.protocol import Protocol
from suite.tune.stages import check_budget, select_and_rerun, set_target
from suite.tune.study import tune
from suite.tune.study_config import StudyError


def execute(p: Protocol, u: Unit, log=print) -> None:
    if u.kind == "study":
        tune(p.study(u.task, u.optimizer, u.k), log=lambda line: log(f"[{u.label}] {line}"))
    elif u.kind == "target":
        set_target(p, u.task, log)
    elif u.kind == "budget":
        check_budget(p, u.task, log)
    else:
        target = json.loads((p.out / u.task / "target" / "target.json").read_text())
        select_and_rerun(p, u.task, u.optimizer, target, log)


def campaign(p: Protocol, jobs: int, stop_after: float | None = None, log=print) -> int:
    """Run every unit not yet done, ``jobs`` at a time, dependencies first; 0 when all are
    done, 3 when stopped by ``stop_after`` seconds (what finished is kept)."""
    units = plan(p)
    finished = {u.label for u in units if done(p, u)}
    todo = [u for u in units if u.label not in finished]
    total_runs = sum(u.runs for u in todo)
    log(f"{len(finished)}/{len(units)} units done; {len(todo)} to run ({total_runs} runs)")
    start, runs_done, lock = time.perf_counter(), 0, threading.Lock()
    running: dict = {}
    with ThreadPoolExecutor(jobs) as pool:
        while todo or running:
            out_of_time = stop_after is not None and time.perf_counter() - start > stop_after
            while len(running) < jobs and not out_of_time:
                nxt = next((u for u in todo if ready(p, u, finished)), None)
                if nxt is None:
                    break
                todo.remove(nxt)
                running[pool.submit(execute, p, nxt, log)] = nxt
            if not running:
                if out_of_time:
                    log("stopped by --stop-after; rerun the same command to continue")
                    return 3
                short = sorted({u.task for u in todo if not budget_ok(p, u.task)})
                raise StudyError(
                    f"{len(todo)} units wait; workloads whose budget is short (the reference "
                    f"still gains at twice the steps; see <task>/target/flatness.md): "
                    f"{', '.join(short) or 'none'}: raise their steps in the protocol (their "
                    "records move aside) or give a budget_waiver with the reason"
                )
            for fut in wait(running, return_when=FIRST_COMPLETED).done:
                u = running.pop(fut)
                fut.result()  # a StudyError stops the campaign (after the running units)
                with lock:
                    finished.add(u.label)
                    runs_done += u.runs
                    spent = time.perf_counter() - start
                    left = sum(x.runs for x in todo) + sum(x.runs for x in running.values())
                    eta = spent / max(runs_done, 1) * left
                    log(
                        f"done {u.label} | {runs_done}/{total_runs} runs in {spent / 60:.1f} min"
                        f" | ETA {eta / 3600:.1f} h at {jobs} job(s)"
                    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m suite.tune.campaign", description=__doc__)
    ap.add_argument("--protocol", default="cpu")
    ap.add_argument("--jobs", type=int, default=1, help="units at once (each run: threads=1)")
    ap.add_argument("--stop-after", type=float, default=None, help="seconds; then stop cleanly")
    ap.add_argument("--plan", action="store_true", help="print the units and the estimate only")
    ap.add_argument("--run-seconds", nargs="*", default=[], help="task=seconds per run, for --plan")
    a = ap.parse_args(argv)
    if a.jobs < 1:
        print(f"error: invalid --jobs {a.jobs} (must be >= 1)", file=sys.stderr)
        return 2
    try:
        p = Protocol.load(a.protocol)
        if a.plan:
            secs = {k: float(v) for k, _, v in (s.partition("=") for s in a.run_seconds)}
            units = plan(p)
            left = [u for u in units if not done(p, u)]
            print(f"{len(units)} units, {sum(u.runs for u in units)} runs; "
                  f"{len(left)} units ({sum(u.runs for u in left)} runs) not done")  # fmt: skip
            print(estimate(p, secs))
            return 0

        def log(line: str) -> None:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

        return campaign(p, a.jobs, a.stop_after, log)
    except StudyError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
