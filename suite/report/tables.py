"""The report's tables: numbers for CSV, formatted strings for Markdown and LaTeX.

Each builder takes the per-group frame from :func:`suite.report.collect.aggregate`
and returns a :class:`Table`. Rows are sorted by task, optimizer and
hyperparameters, never by a metric: ordering by a mean over three seeds would
rank by noise. Significance lives in the comparison table (Welch's t-test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from suite.report.collect import HP, PROBLEM_COLUMNS, Records, baseline_optimizer
from suite.report.stats import ALPHA, welch

MIB = 2**20


@dataclass
class Table:
    name: str  # file stem of the CSV and LaTeX files
    title: str
    caption: str
    data: pd.DataFrame  # numbers (CSV)
    shown: pd.DataFrame  # formatted strings (Markdown, LaTeX)


# --- formatting ----------------------------------------------------------------------------


def num(x: float, fmt: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return format(x, fmt)


def pm(mean: float, std: float, fmt: str = ".4g") -> str:
    """Mean ± std as text; just the mean when there is no std (one seed)."""
    if isinstance(std, float) and math.isnan(std):
        return num(mean, fmt)
    return f"{num(mean, fmt)} ± {num(std, '.2g')}"


def shown_hparams(agg: pd.DataFrame) -> tuple[list[str], dict[str, object]]:
    """Hyperparameters worth a column: lr, weight_decay and any other that varies;
    plus the ones that never vary (for a note)."""
    show, fixed = [], {}
    for col in (c for c in agg.columns if c.startswith(HP)):
        name = col[len(HP) :]
        values = {repr(v) for v in agg[col].dropna()}
        if name in ("lr", "weight_decay") or len(values) > 1:
            show.append(col)
        elif values:
            fixed[name] = agg[col].dropna().iloc[0]
    return show, fixed


def hp_label(row: pd.Series, cols: list[str]) -> str:
    parts = []
    for c in cols:
        v = row[c]
        if not (isinstance(v, float) and math.isnan(v)):
            parts.append(f"{c[len(HP) :]}={num(v, 'g') if isinstance(v, float) else v}")
    return ", ".join(parts) or "-"


def _key_columns(agg: pd.DataFrame) -> pd.DataFrame:
    cols, _ = shown_hparams(agg)
    return pd.DataFrame(
        {
            "Task": agg["task"],
            "Optimizer": agg["optimizer"],
            "Hyperparameters": agg.apply(hp_label, axis=1, cols=cols),
            "Steps": agg["max_steps"].map(lambda x: num(x, "g")),
            "n": agg["n"].astype(str),
        }
    )


def _data_keys(agg: pd.DataFrame) -> pd.DataFrame:
    keys = ["task", "optimizer", "impl", "state_bits", "max_steps", "hparams"]
    hp = [c for c in agg.columns if c.startswith(HP)]
    out = agg[keys + hp + ["n", "seeds", "excluded"]].copy()
    rename = {c: c[len(HP) :] for c in hp if c[len(HP) :] not in out.columns}
    return out.rename(columns=rename)


def target_label(row: pd.Series) -> str:
    op = ">=" if row["target_direction"] == "max" else "<="
    return f"{row['target_metric']} {op} {num(row['target_value'], 'g')}"


# --- tables --------------------------------------------------------------------------------


def convergence(agg: pd.DataFrame) -> Table:
    data = _data_keys(agg)
    for c in ("target_metric", "target_value", "target_direction"):
        data[c] = agg[c]
    for c in ("final_train_loss", "best_target", "steps_to_target", "seconds_to_target"):
        data[f"{c}_mean"], data[f"{c}_std"] = agg[f"{c}_mean"], agg[f"{c}_std"]
    data["reached"] = agg["reached"]

    def to_target(row: pd.Series, col: str, fmt: str) -> str:
        if row["reached"] == 0:
            return "not reached"
        return pm(row[f"{col}_mean"], row[f"{col}_std"], fmt)

    shown = _key_columns(agg)
    shown["Final train loss"] = [
        pm(m, s)
        for m, s in zip(agg["final_train_loss_mean"], agg["final_train_loss_std"], strict=True)
    ]
    shown["Target"] = agg.apply(target_label, axis=1)
    shown["Best test metric"] = [
        pm(m, s) for m, s in zip(agg["best_target_mean"], agg["best_target_std"], strict=True)
    ]
    shown["Steps to target"] = agg.apply(to_target, axis=1, col="steps_to_target", fmt=".0f")
    shown["Seconds to target"] = agg.apply(to_target, axis=1, col="seconds_to_target", fmt=".3g")
    shown["Reached"] = [f"{k}/{n} reached" for k, n in zip(agg["reached"], agg["n"], strict=True)]
    shown["Not in table"] = agg["excluded"].astype(str)
    caption = (
        "Mean ± std over seeds (n). Best test metric: best value of the task's target metric over "
        "evaluations. Steps and seconds to target: mean over the seeds that reached it (k/n). "
        "Not in table: runs of the group that diverged, failed or are incomplete (listed below)."
    )
    return Table("convergence", "Convergence", caption, data, shown)


def generalization(agg: pd.DataFrame) -> Table:
    data = _data_keys(agg)
    data["target_metric"] = agg["target_metric"]
    for c in ("final_target", "best_target", "final_train", "gap"):
        data[f"{c}_mean"], data[f"{c}_std"] = agg[f"{c}_mean"], agg[f"{c}_std"]
    shown = _key_columns(agg)
    shown["Metric"] = agg["target_metric"]
    shown["Final test"] = [
        pm(m, s) for m, s in zip(agg["final_target_mean"], agg["final_target_std"], strict=True)
    ]
    shown["Best test"] = [
        pm(m, s) for m, s in zip(agg["best_target_mean"], agg["best_target_std"], strict=True)
    ]
    shown["Train - test gap"] = [
        pm(m, s) for m, s in zip(agg["gap_mean"], agg["gap_std"], strict=True)
    ]
    caption = (
        "Final and best value of the target metric on the test split, and the train-test gap "
        "train/<m> - test/<m> at the final evaluation (nan where the task has no train/<m>)."
    )
    return Table("generalization", "Generalization", caption, data, shown)


def memory(agg: pd.DataFrame, records: Records) -> Table:
    runs = records.runs
    data = _data_keys(agg)
    data["peak_memory_kind"] = agg["peak_memory_kind"]
    used = {}
    for task in agg["task"].unique():
        name = baseline_optimizer(runs, task)
        if name is None:
            continue
        base = runs[(runs["task"] == task) & (runs["optimizer"] == name)]
        used[task] = (name, base)
    rel = {"state_bytes_per_param": [], "peak_memory_bytes": [], "median_step_time_s": []}
    for _, row in agg.iterrows():
        name, base = used.get(row["task"], (None, None))
        for col in rel:
            value = math.nan
            if base is not None:
                ref = base
                if col == "peak_memory_bytes":  # only compare like with like (CUDA vs RSS)
                    ref = base[base["peak_memory_kind"] == row["peak_memory_kind"]]
                denom = float(ref[col].mean()) if len(ref) else math.nan
                value = row[f"{col}_mean"] / denom if denom and math.isfinite(denom) else math.nan
            rel[col].append(value)
    for col in rel:
        data[f"{col}_mean"] = agg[f"{col}_mean"]
        data[f"{col}_std"] = agg[f"{col}_std"]
        data[f"{col}_rel"] = rel[col]
    shown = _key_columns(agg)
    shown["State bytes/param"] = agg["state_bytes_per_param_mean"].map(lambda x: num(x, ".3g"))
    shown["State x AdamW"] = [num(x, ".2f") for x in rel["state_bytes_per_param"]]
    shown["Peak memory (MiB)"] = [
        f"{num(m / MIB, '.1f')} ({k})"
        for m, k in zip(agg["peak_memory_bytes_mean"], agg["peak_memory_kind"], strict=True)
    ]
    shown["Peak x AdamW"] = [num(x, ".2f") for x in rel["peak_memory_bytes"]]
    shown["Median step (ms)"] = [
        pm(m * 1e3, s * 1e3, ".3g")
        for m, s in zip(agg["median_step_time_s_mean"], agg["median_step_time_s_std"], strict=True)
    ]
    shown["Step x AdamW"] = [num(x, ".2f") for x in rel["median_step_time_s"]]
    which = "; ".join(
        f"{t}: {n} ({'in-house' if n == 'adamw' else 'torch.optim'})"
        for t, (n, _) in sorted(used.items())
    )
    missing = sorted(set(agg["task"]) - set(used))
    caption = (
        "Optimizer state bytes per parameter, peak memory and median step time (means over seeds); "
        "x AdamW: relative to the mean of the 32-bit AdamW runs of the same task"
        f" ({which or 'none present'})"
        + (f"; no 32-bit AdamW runs for {', '.join(missing)} (nan)" if missing else "")
        + ". Peak memory is compared only between runs that measured the same kind."
    )
    return Table("memory", "Memory", caption, data, shown)


def _baseline_group(agg: pd.DataFrame, task: str, name: str, max_steps: float) -> pd.Series | None:
    cands = agg[(agg["task"] == task) & (agg["optimizer"] == name)]
    same = cands[cands["max_steps"] == max_steps]
    cands = same if len(same) else cands
    if cands.empty:
        return None
    higher = cands["target_direction"].iloc[0] == "max"
    order = cands["best_target_mean"].fillna(-math.inf if higher else math.inf)
    return cands.loc[order.idxmax() if higher else order.idxmin()]


COMPARISON_COLUMNS = [
    "task",
    "optimizer",
    "hparams",
    "max_steps",
    "metric",
    "n",
    "mean",
    "std",
    "baseline",
    "baseline_hparams",
    "baseline_n",
    "baseline_mean",
    "baseline_std",
    "diff",
    "p",
    "significant",
    "result",
]
COMPARISON_SHOWN = [
    "Task",
    "Optimizer",
    "Hyperparameters",
    "Metric",
    "Candidate",
    "Baseline",
    "Difference",
    "p",
    "Result",
]


def comparisons(agg: pd.DataFrame, records: Records, alpha: float = ALPHA) -> Table:
    runs = records.runs
    cols, _ = shown_hparams(agg)
    rows, shown = [], []
    for _, g in agg.iterrows():
        name = baseline_optimizer(runs, g["task"])
        base = _baseline_group(agg, g["task"], name, g["max_steps"]) if name else None
        if base is None or base["group"] == g["group"]:
            continue
        a = runs.loc[runs["group"] == g["group"], "best_target"]
        b = runs.loc[runs["group"] == base["group"], "best_target"]
        c = welch(a, b, alpha)
        rows.append(
            {
                "task": g["task"],
                "optimizer": g["optimizer"],
                "hparams": g["hparams"],
                "max_steps": g["max_steps"],
                "metric": f"best {g['target_metric']}",
                "n": c.n_a,
                "mean": c.mean_a,
                "std": c.std_a,
                "baseline": base["optimizer"],
                "baseline_hparams": base["hparams"],
                "baseline_n": c.n_b,
                "baseline_mean": c.mean_b,
                "baseline_std": c.std_b,
                "diff": c.diff,
                "p": c.p,
                "significant": c.significant,
                "result": c.result,
            }
        )
        shown.append(
            {
                "Task": g["task"],
                "Optimizer": g["optimizer"],
                "Hyperparameters": hp_label(g, cols),
                "Metric": f"best {g['target_metric']}",
                "Candidate": f"{pm(c.mean_a, c.std_a)} (n={c.n_a})",
                "Baseline": f"{base['optimizer']} [{hp_label(base, cols)}] "
                f"{pm(c.mean_b, c.std_b)} (n={c.n_b})",
                "Difference": num(c.diff, "+.3g"),
                "p": num(c.p, ".3g") if not math.isnan(c.p) else "-",
                "Result": c.result,
            }
        )
    caption = (
        "Each group against the task's 32-bit AdamW baseline (in-house adamw if present, else "
        "torch_adamw; of its hyperparameter settings with the same step budget, the one with the "
        "best mean), on the best value of the target metric per seed. Welch's t-test; significant "
        f"at p < {alpha:g}. With fewer than 2 seeds on either side there is no test."
    )
    data = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    shown_df = pd.DataFrame(shown, columns=COMPARISON_SHOWN)
    return Table("comparisons", "Comparisons with the AdamW baseline", caption, data, shown_df)


def not_in_tables(records: Records) -> Table:
    data = records.problems[PROBLEM_COLUMNS].copy()
    shown = data.rename(columns=str.capitalize).astype(str)
    caption = (
        "Every run folder that is not counted above: diverged, failed, still running, "
        "missing/incomplete (config.yaml but no summary.json), malformed records, duplicates."
    )
    return Table("not_in_tables", "Runs not in the tables", caption, data, shown)


def build_tables(agg: pd.DataFrame, records: Records) -> list[Table]:
    tables = []
    if not agg.empty:
        tables = [
            convergence(agg),
            generalization(agg),
            memory(agg, records),
            comparisons(agg, records),
        ]
    return tables + [not_in_tables(records)]


# --- rendering -----------------------------------------------------------------------------


def _md_cell(x: object) -> str:
    return " ".join(str(x).split()).replace("|", "\\|")


def to_markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "_(none)_"
    head = "| " + " | ".join(_md_cell(c).strip() for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = [
        "| " + " | ".join(_md_cell(v) for v in row) + " |" for row in df.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body])


_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: object) -> str:
    s = "".join(_LATEX.get(ch, ch) for ch in " ".join(str(text).split()))
    return s.replace("±", r"$\pm$").replace("<=", r"$\le$").replace(">=", r"$\ge$")


def to_latex(table: Table) -> str:
    df = table.shown.map(latex_escape) if not table.shown.empty else table.shown
    df = df.rename(columns=lambda c: latex_escape(c.strip()))
    return df.to_latex(
        index=False, escape=False, caption=latex_escape(table.caption), label=f"tab:{table.name}"
    )
