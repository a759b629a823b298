"""``python -m suite.report.documents.tier ROOT --protocol cpu [--out DIR]``: the tier's report.

Reads a complete campaign folder (``make campaign`` -> ``results/cpu``; refused in one
line, naming what is missing, while any unit is not done) and writes ``DIR/README.md``
(default ``ROOT/report``) with the tables the mission promises, overall and per model
kind, and ``profile.png`` / ``tuning-<task>.png``. Written in a temporary folder and
swapped in whole, so a reader sees the old report or the new one (:func:`write`).

What each figure is, and why it can be trusted, is in :mod:`suite.report.present.tier_tables` and
:mod:`suite.report.present.tier_answer`.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

from suite.report.compute.reach import reach, target_consistency
from suite.report.present import tier_answer as answers
from suite.report.present import tier_tables as tables
from suite.report.present.plots.tier import profile_plot, tuning_plot
from suite.report.present.render import to_markdown
from suite.report.read.tier_records import Tier, load, read_protocol

HOW_TO_READ = """\
## How to read this

- **Targets are set apart from scoring.** Each workload's target is the median best val
  metric of the reference ({reference}) rerun at the target seeds {target_seeds} at its
  best trial; those runs are never scored, and no scored run moves a target.
- **Scored runs** are each optimizer's point chosen on val ({chosen}) rerun at seeds
  {rerun_seeds}, paired by seed across optimizers (same initialisation and batch order).
- **Leaderboard:** AlgoPerf's integrated performance-profile score on steps to target, with a
  95 % interval from resampling seeds (2,000 replicates); a rank is stated only where the
  intervals separate (a range such as `2-5` otherwise), with P(rank 1) beside it. A second
  board scores each study's own best trial (AlgoPerf's external tuning), so its interval
  holds tuning luck too.
- **Convergence:** a run that missed the target is a miss, never a hit at the budget: reach
  k/n with its exact 95 % interval, steps among the runs that reached, Kaplan-Meier median.
  The reference itself reaches at about half its scored seeds when those seeds and the
  target-setting ones behave alike; the budget table gives its reach and the two-sided p of
  that (beta-binomial), which flags a target set by lucky or unlucky seeds.
- **Verdicts** against {reference} are paired by seed, Holm-adjusted over the optimizers on
  each workload, and "equivalent" only by TOST at the margin shown (0.005 accuracy, 0.01
  nats), else "inconclusive" with the seeds that would decide.
- **Seconds are indicative:** the campaign's runs were not interleaved with each other on
  a quiet machine; steps are exact. `make compare` times a candidate against an interleaved
  AdamW control.
- **Budgets:** {budget_note}
"""


def _budget_table(tier: Tier) -> str:
    rows = []
    for task, w in tier.workloads.items():
        f = w.flatness or {}
        check = (
            f"gain at 2x steps {f['gain']:+.4g} vs seed spread {f['spread']:.4g}: "
            + ("flat" if f.get("flat") else "still gains")
            if "gain" in f
            else "not run"
        )
        ref = reach([r.ttt for r in tier.scored(task, tier.reference)])
        p = target_consistency(ref.k, ref.n, len(w.target_values)) if ref.n else math.nan
        rows.append(
            f"| {task} | {w.kind} | {w.steps} | {w.target.metric} {w.target.value:.4g} "
            f"(values {', '.join(f'{v:.4g}' for v in w.target_values)}) | "
            f"{ref.k}/{ref.n} (p {p:.2g}) | {check} | {w.waiver or '-'} |"
        )
    head = (
        "| Workload | Kind | Steps | Target (median of target runs) | Reference reach at the "
        "scored seeds | Budget check | Waiver |"
    )
    return "\n".join([head, "|---|---|---|---|---|---|---|", *rows])


def _env_line(tier: Tier) -> str:
    env = tier.env
    bits = [f"{k}: {env[k]}" for k in ("cpu", "cpu_count", "torch_threads", "python") if k in env]
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    names = ("torch", "timm", "transformers", "bitsandbytes", "torchao", "optuna")
    bits += [f"{k} {packages[k]}" for k in names if k in packages]
    return "; ".join(bits) or "not recorded"


def markdown(tier: Tier, n_boot: int = 2000) -> tuple[str, object]:
    p = tier.protocol
    waivers = [t for t, w in tier.workloads.items() if w.waiver]
    budget_note = (
        f"{len(waivers)} of {len(tier.workloads)} workloads are ranked at a budget where the "
        "reference still improves (waivers below, with the measured gain): a rank says who is "
        "ahead at this budget, not who ends best."
        if waivers
        else "every workload's reference has flattened by its budget (table below)."
    )
    same = tables.same_math(tier)
    partial = p.get("partial_of")
    parts = [
        f"# The {p.get('name', 'CPU')} tier: {len(tier.optimizers)} optimizers on "
        f"{len(tier.workloads)} workloads"
        + (
            f" (a part: {len(tier.workloads)} of {partial} workloads are complete)"
            if partial
            else ""
        ),
        "",
        HOW_TO_READ.format(
            reference=tier.reference,
            target_seeds=p["target_seeds"],
            chosen=(
                f"pooled over its {p['studies']} independent studies of "
                f"{p['trials_per_study']} Sobol trials"
                if not p.get("select_from")
                else f"chosen in {p['select_from']}'s studies at its budget and model sizes, "
                "not tuned again here: how those choices carry over"
            ),
            rerun_seeds=p["rerun_seeds"],
            budget_note=budget_note,
        ),
        f"Records: {len(tier.runs)} scored runs, {len(tier.trials)} trials. "
        f"Machine and versions (from a scored run's env.json): {_env_line(tier)}.",
        "",
        "## Workloads and budgets",
        "",
        _budget_table(tier),
        "",
        f"## The answer: better than {tier.reference}, equivalent to it, or worse, per model kind",
        "",
        f"On the test metric at each optimizer's val-chosen configuration, paired by seed with "
        f"{tier.reference} over seeds {p['rerun_seeds']}: the mean difference (+ is better, for "
        "loss and accuracy alike) and its 95 % interval. Better or worse: Holm-adjusted p < 0.05 "
        "over the optimizers of the workload; equivalent: TOST at the margin shown; else "
        "inconclusive. An optimizer with a run that has no test value (diverged) is not "
        "compared, and named. Who reaches the target first is the leaderboards' question, below.",
        "",
        to_markdown(answers.answer(tier)),
        "",
        "The same verdicts read across model kinds, one row per optimizer (the mean paired "
        "difference, + is better):",
        "",
        to_markdown(answers.by_optimizer(tier)),
        "",
    ]
    overall = tables.board(tier, list(tier.workloads), n_boot)
    if not partial:
        parts += ["## Leaderboard, all workloads", ""]
        parts += [to_markdown(tables.leaderboard_table(overall, same)), ""]
        parts += ["![profiles](profile.png)", ""]
    if not partial and tier.trials:
        by_study = tables.study_board(tier, list(tier.workloads), n_boot)
        parts += [
            "Tuning luck included (AlgoPerf's external tuning: each study's best trial, median "
            "over studies, interval from resampling studies; optimistic, as the pick and its "
            "time come from one run):",
            "",
            to_markdown(tables.leaderboard_table(by_study, {})),
            "",
        ]
    for kind in sorted({w.kind for w in tier.workloads.values()}):
        tasks = [t for t, w in tier.workloads.items() if w.kind == kind]
        b = tables.board(tier, tasks, n_boot)
        parts += [f"## Model kind: {kind} ({', '.join(tasks)})", "", "### Leaderboard", ""]
        parts += [to_markdown(tables.leaderboard_table(b, same)), ""]
        if tier.trials:
            by_study = tables.study_board(tier, tasks, n_boot)
            parts += ["By study (tuning luck included, as above):", ""]
            parts += [to_markdown(tables.leaderboard_table(by_study, {})), ""]
        for task in tasks:
            parts += [
                f"### {task}",
                "",
                "Convergence:",
                "",
                to_markdown(tables.convergence(tier, task)),
            ]
            parts += ["", "Generalization:", "", to_markdown(answers.generalization(tier, task))]
            parts += ["", "Memory:", "", to_markdown(tables.memory(tier, task))]
            if tier.trials:
                parts += ["", "Cost to tune and sensitivity:", ""]
                parts += [to_markdown(tables.tuning(tier, task)), ""]
                parts += [f"![cost to tune](tuning-{task}.png)", ""]
            else:
                parts += [""]
    if same:
        parts += ["Identical math: " + ", ".join(f"{a} = {b}" for a, b in same.items()), ""]
    return "\n".join(parts), overall


def only(protocol: dict, workloads: list[str] | None) -> dict:
    """The protocol restricted to ``workloads`` (each one of its own), marked partial."""
    if not workloads:
        return protocol
    bad = [w for w in workloads if w not in protocol["workloads"]]
    if bad:
        raise ValueError(f"workload {bad[0]!r} is not one of {sorted(protocol['workloads'])}")
    kept = {w: protocol["workloads"][w] for w in workloads}
    return {**protocol, "workloads": kept, "partial_of": len(protocol["workloads"])}


def write(root: Path, protocol: dict, out: Path | None = None, n_boot: int = 2000) -> Path:
    """Write the report for the complete tier at ``root`` into ``out`` (default ROOT/report);
    ``protocol`` as :func:`read_protocol` returns it."""
    tier = load(root, protocol)
    out = Path(out) if out else Path(root) / "report"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    text, overall = markdown(tier, n_boot)
    (tmp / "README.md").write_text(text + "\n")
    profile_plot(tier, overall, tmp / "profile.png")
    for task in tier.workloads if tier.trials else ():
        tuning_plot(tier, task, tmp / f"tuning-{task}.png")
    old = out.with_name(f".{out.name}.old")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m suite.report.documents.tier", description=__doc__)
    ap.add_argument("root", type=Path, help="the campaign folder, e.g. results/cpu")
    ap.add_argument("--protocol", default="cpu", help="suite/conf/protocol/<name>.yaml")
    ap.add_argument("--out", type=Path, help="report folder (default ROOT/report)")
    ap.add_argument(
        "--workloads",
        nargs="+",
        help="report only these (complete) workloads; no overall leaderboard is drawn then",
    )
    args = ap.parse_args(argv)
    try:
        protocol = {**read_protocol(args.protocol), "name": args.protocol.upper()}
        protocol = only(protocol, args.workloads)
        out = write(args.root, protocol, args.out)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
