"""The nightly regression gate: a new report against a committed baseline report.

    python -m suite.report.documents.gate --base results/nightly-baseline --new results/nightly
                                          [--k 2] [--floor 0.01] [--time-ratio 1.25]

Both folders are what ``python -m suite.report`` writes; the gate reads only their CSVs:
``convergence.csv`` (target metric per group), ``memory.csv`` (median step time) and, to
say why a row went missing, ``not_in_tables.csv``. A row is one group: task + optimizer +
hyperparameters (the ``hparams`` column, which spells out every hyperparameter column
canonically) + ``max_steps``. Every baseline row is looked up in the new report and fails
when:

- **metric**: its best value of the task's target metric (``best_target_mean``) is worse
  than the baseline's by more than the seed-noise band
  ``max(k * pooled_std, floor)``, where ``pooled_std`` pools the two reports' per-seed
  stds, ``sqrt(((n_b - 1) s_b^2 + (n_n - 1) s_n^2) / (n_b + n_n - 2))`` (a side with one
  seed adds nothing; with no std on either side the band is ``floor``). Worse follows the
  task's ``target_direction``: lower for ``max`` (accuracy), higher for ``min`` (loss). A
  metric that became NaN is worse. Improvements never fail.
- **step time**: its mean median step time grew by more than ``--time-ratio`` (new / base).
- **missing**: it is not in the new report. When ``not_in_tables.csv`` lists diverged or
  failed runs of the same task and optimizer, the verdict says so (status ok -> diverged).
- **seeds**: fewer of its seeds are in the table than in the baseline (``n`` went down or
  ``excluded`` went up), e.g. one seed of two diverged.

Rows only in the new report are shown and pass. Prints a Markdown table of every row with
its verdict, then one line per failing row. Exit 0: no row failed; 1: some row failed; 2: a
folder is not a report (one-line error).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from suite.report.present.render import to_markdown

KEY = ["task", "optimizer", "hparams", "max_steps"]
CONVERGENCE = KEY + [
    "n",
    "excluded",
    "target_metric",
    "target_direction",
    "best_target_mean",
    "best_target_std",
]
MEMORY = KEY + ["median_step_time_s_mean"]
NOT_OK = ("diverged", "failed")


class ReportError(Exception):
    """A folder that is not a readable report; the message is one line."""


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype={"task": str, "optimizer": str, "hparams": str})
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise ReportError(f"{path}: unreadable CSV ({type(e).__name__}: {e})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ReportError(f"{path}: not a suite.report table, missing columns {missing}")
    df = df[columns].copy()
    if "max_steps" in df:
        df["max_steps"] = pd.to_numeric(df["max_steps"], errors="coerce")
        df["hparams"] = df["hparams"].fillna("-")
    return df


def read_report(folder: Path, role: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per group: convergence + memory columns, not_in_tables rows)."""
    if not folder.is_dir():
        raise ReportError(f"{role} report {folder}: no such folder")
    problems = pd.DataFrame(columns=["status", "task", "optimizer"])
    if (folder / "not_in_tables.csv").is_file():
        problems = _read_csv(folder / "not_in_tables.csv", ["status", "task", "optimizer"])
    conv_path, mem_path = folder / "convergence.csv", folder / "memory.csv"
    if not conv_path.is_file():
        # suite.report writes no convergence/memory tables when no run is ok: a new report
        # like that is every row gone; a baseline like that is no baseline at all.
        if role == "new" and (folder / "report.md").is_file():
            empty = pd.DataFrame(columns=CONVERGENCE + MEMORY[len(KEY) :])
            return empty.astype({"max_steps": float}), problems
        raise ReportError(f"{role} report {folder}: no convergence.csv (not a suite.report folder)")
    if not mem_path.is_file():
        raise ReportError(f"{role} report {folder}: no memory.csv (not a suite.report folder)")
    conv, mem = _read_csv(conv_path, CONVERGENCE), _read_csv(mem_path, MEMORY)
    for name, df in (("convergence.csv", conv), ("memory.csv", mem)):
        dup = df[df.duplicated(KEY, keep=False)]
        if len(dup):
            r = dup.iloc[0]
            raise ReportError(f"{folder / name}: two rows for {_label(r)}")
    rows = conv.merge(mem, on=KEY, how="left")
    if role == "baseline" and rows.empty:
        raise ReportError(f"baseline report {folder}: convergence.csv has no rows")
    return rows, problems


def _label(r: pd.Series) -> str:
    return f"{r['task']} {r['optimizer']} [{r['hparams']}] steps={r['max_steps']:g}"


def pooled_std(n1: float, s1: float, n2: float, s2: float) -> float:
    """Pooled per-seed std of two groups; a group with one seed (or no std) adds nothing."""
    num = df = 0.0
    for n, s in ((n1, s1), (n2, s2)):
        if n > 1 and math.isfinite(s):
            num, df = num + (n - 1) * s * s, df + (n - 1)
    return math.sqrt(num / df) if df > 0 else math.nan


def judge_metric(b: pd.Series, n: pd.Series, k: float, floor: float) -> tuple[float, str | None]:
    """(band, failure reason or None) for the target metric of one matched row."""
    std = pooled_std(b["n"], b["best_target_std"], n["n"], n["best_target_std"])
    band = max(k * std, floor) if math.isfinite(std) else floor
    base, new = b["best_target_mean"], n["best_target_mean"]
    metric = f"best {b['target_metric']}"
    if math.isnan(base):
        return band, None
    if math.isnan(new):
        return band, f"{metric} is nan (baseline {base:.4g})"
    worse = base - new if b["target_direction"] == "max" else new - base
    if worse > band:
        return band, f"{metric} {new:.4g} vs {base:.4g}: worse by {worse:.3g} > band {band:.3g}"
    return band, None


def compare(
    base: pd.DataFrame,
    new: pd.DataFrame,
    new_problems: pd.DataFrame,
    k: float = 2.0,
    floor: float = 0.01,
    time_ratio: float = 1.25,
) -> pd.DataFrame:
    """One row per group of either report, with its numbers, ``failures`` and ``verdict``."""
    both = base.merge(new, on=KEY, how="outer", suffixes=("_b", "_n"), indicator=True)
    rows = []
    for _, r in both.iterrows():
        b = {c[:-2]: r[c] for c in r.index if c.endswith("_b")} | {c: r[c] for c in KEY}
        n = {c[:-2]: r[c] for c in r.index if c.endswith("_n")} | {c: r[c] for c in KEY}
        b, n = pd.Series(b), pd.Series(n)
        failures: list[str] = []
        band = ratio = math.nan
        if r["_merge"] == "right_only":
            verdict = "ok (new row)"
        elif r["_merge"] == "left_only":
            failures.append(_why_missing(r, new_problems))
        else:
            band, why = judge_metric(b, n, k, floor)
            failures += [why] if why else []
            tb, tn = b["median_step_time_s_mean"], n["median_step_time_s_mean"]
            if math.isfinite(tb) and tb > 0:
                ratio = tn / tb if math.isfinite(tn) else math.inf
                if ratio > time_ratio:
                    failures.append(
                        f"median step {tn * 1e3:.3g} ms vs {tb * 1e3:.3g} ms: "
                        f"{ratio:.2f}x > {time_ratio:g}x"
                    )
            if n["n"] < b["n"] or n["excluded"] > b["excluded"]:
                failures.append(_why_fewer_seeds(r, b, n, new_problems))
        if r["_merge"] != "right_only":
            verdict = "FAIL: " + "; ".join(failures) if failures else "ok"
        src = n if r["_merge"] == "right_only" else b
        rows.append(
            {
                **{c: r[c] for c in KEY},
                "metric": src["target_metric"],
                "direction": src["target_direction"],
                "n_base": b["n"],
                "base": b["best_target_mean"],
                "base_std": b["best_target_std"],
                "n_new": n["n"],
                "new": n["best_target_mean"],
                "new_std": n["best_target_std"],
                "band": band,
                "step_ms_base": b["median_step_time_s_mean"] * 1e3,
                "step_ms_new": n["median_step_time_s_mean"] * 1e3,
                "step_ratio": ratio,
                "failures": failures,
                "verdict": verdict,
            }
        )
    out = pd.DataFrame(rows)
    return out.sort_values(KEY, kind="stable").reset_index(drop=True) if len(out) else out


def _statuses(r: pd.Series, problems: pd.DataFrame) -> list[str]:
    """Statuses of the not-ok runs of the row's task and optimizer (not_in_tables.csv has no
    hyperparameters, so all settings of that pair count)."""
    hit = problems[(problems["task"] == r["task"]) & (problems["optimizer"] == r["optimizer"])]
    return sorted(s for s in set(hit["status"]) if s in NOT_OK)


def _why_missing(r: pd.Series, problems: pd.DataFrame) -> str:
    bad = _statuses(r, problems)
    if bad:
        return f"status ok -> {'/'.join(bad)} (every seed; see not_in_tables.csv)"
    return "missing from the new report"


def _why_fewer_seeds(r: pd.Series, b: pd.Series, n: pd.Series, problems: pd.DataFrame) -> str:
    bad = _statuses(r, problems)
    what = f"status ok -> {'/'.join(bad)} for some seeds" if bad else "seeds missing"
    return f"{what}: {n['n']:g} in the table (baseline {b['n']:g}), {n['excluded']:g} excluded"


def _num(x: float, fmt: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def render(result: pd.DataFrame) -> str:
    def pm(mean: float, std: float, n: float) -> str:
        if isinstance(n, float) and math.isnan(n):
            return "-"
        spread = "" if math.isnan(std) else f" ± {std:.2g}"
        return f"{_num(mean, '.4g')}{spread} (n={n:g})"

    shown = pd.DataFrame(
        {
            "Task": result["task"],
            "Optimizer": result["optimizer"],
            "Hyperparameters": result["hparams"],
            "Steps": result["max_steps"].map(lambda x: _num(x, "g")),
            "Metric": [
                f"best {m} ({'higher' if d == 'max' else 'lower'} is better)"
                for m, d in zip(result["metric"], result["direction"], strict=True)
            ],
            "Baseline": [
                pm(*v)
                for v in zip(result["base"], result["base_std"], result["n_base"], strict=True)
            ],
            "New": [
                pm(*v) for v in zip(result["new"], result["new_std"], result["n_new"], strict=True)
            ],
            "Band": result["band"].map(lambda x: _num(x, ".3g")),
            "Step ms (base -> new)": [
                f"{_num(a, '.3g')} -> {_num(b, '.3g')}" + ("" if math.isnan(x) else f" ({x:.2f}x)")
                for a, b, x in zip(
                    result["step_ms_base"], result["step_ms_new"], result["step_ratio"], strict=True
                )
            ],
            "Verdict": result["verdict"],
        }
    )
    return to_markdown(shown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m suite.report.documents.gate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--base", type=Path, required=True, help="baseline report folder")
    parser.add_argument("--new", type=Path, required=True, help="new report folder")
    parser.add_argument(
        "--k", type=float, default=2.0, help="band width in pooled seed stds (default 2)"
    )
    parser.add_argument(
        "--floor", type=float, default=0.01, help="smallest band, in metric units (default 0.01)"
    )
    parser.add_argument(
        "--time-ratio", type=float, default=1.25, help="largest new/base step time (1.25)"
    )
    args = parser.parse_args(argv)
    for name in ("k", "floor", "time_ratio"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value >= (1.0 if name == "time_ratio" else 0.0)):
            parser.error(f"--{name.replace('_', '-')} {value}: out of range")
    try:
        base, _ = read_report(args.base, "baseline")
        new, new_problems = read_report(args.new, "new")
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = compare(base, new, new_problems, args.k, args.floor, args.time_ratio)
    failed = result[result["failures"].map(bool)]
    print(f"# Regression gate: {args.new} vs baseline {args.base}\n")
    print(
        f"_Fails a row whose best target metric is worse than the baseline by more than "
        f"max({args.k:g} x pooled seed std, {args.floor:g}), whose median step time grew by "
        f"more than {args.time_ratio:g}x, that is missing, or whose seeds diverged/failed._\n"
    )
    print(render(result))
    print()
    for _, r in failed.iterrows():
        print(f"FAIL {_label(r)}: {'; '.join(r['failures'])}")
    compared = int((result["verdict"] != "ok (new row)").sum())
    print(
        f"gate: {'FAIL' if len(failed) else 'PASS'} ({len(failed)} of {compared} baseline rows "
        f"failed, {len(result) - compared} new rows)"
    )
    return 1 if len(failed) else 0


if __name__ == "__main__":
    sys.exit(main())
