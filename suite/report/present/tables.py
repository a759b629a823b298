"""The report's tables: numbers for CSV, formatted strings for Markdown and LaTeX.

Each builder takes the per-group frame from :func:`suite.report.read.collect.aggregate`
and returns a :class:`Table`. Rows are sorted by task, optimizer and
hyperparameters, never by a metric: ordering by a mean over three seeds would
rank by noise. Significance lives in the comparison table (Welch's t-test).
"""

from __future__ import annotations

import math

import pandas as pd

from suite.report.compute.aggregate import baseline_optimizer
from suite.report.present.comparisons import comparisons
from suite.report.present.render import MIB, Table, hp_label, num, pm, shown_hparams
from suite.report.read.collect import PROBLEM_COLUMNS, Records
from suite.report.read.rows import HP


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
    shown["Best target metric"] = [
        pm(m, s) for m, s in zip(agg["best_target_mean"], agg["best_target_std"], strict=True)
    ]
    shown["Steps to target"] = agg.apply(to_target, axis=1, col="steps_to_target", fmt=".0f")
    shown["Seconds to target"] = agg.apply(to_target, axis=1, col="seconds_to_target", fmt=".3g")
    shown["Reached"] = [f"{k}/{n} reached" for k, n in zip(agg["reached"], agg["n"], strict=True)]
    shown["Not in table"] = agg["excluded"].astype(str)
    caption = (
        "Mean ± std over seeds (n). Final train loss: mean of the last logged training losses "
        "(minibatches, train mode, as the optimizer saw them); it differs from train/<m> in the "
        "generalization table, an evaluation on a fixed train subset in eval mode. Best target "
        "metric: best value of the task's target metric (its val split) over evaluations. Steps "
        "and seconds to target: mean over the seeds that reached it (k/n). Not in table: runs of "
        "the group that diverged, failed or are incomplete (listed below)."
    )
    return Table("convergence", "Convergence", caption, data, shown)


def generalization(agg: pd.DataFrame) -> Table:
    data = _data_keys(agg)
    data["target_metric"], data["test_metric"] = agg["target_metric"], agg["test_metric"]
    for c in ("final_target", "final_test", "final_train", "gap"):
        data[f"{c}_mean"], data[f"{c}_std"] = agg[f"{c}_mean"], agg[f"{c}_std"]
    shown = _key_columns(agg)
    shown["Metric"] = agg["target_metric"].map(lambda m: m.split("/", 1)[-1])
    for col, name in (("final_train", "train"), ("final_target", "target (val)")):
        shown[f"Final {name}"] = [
            pm(m, s) for m, s in zip(agg[f"{col}_mean"], agg[f"{col}_std"], strict=True)
        ]
    shown["Final test"] = [
        pm(m, s) for m, s in zip(agg["final_test_mean"], agg["final_test_std"], strict=True)
    ]
    shown["Train - test gap"] = [
        pm(m, s) for m, s in zip(agg["gap_mean"], agg["gap_std"], strict=True)
    ]
    caption = (
        "The target metric at the final evaluation on each split: train/<m> (evaluation on a "
        "fixed train subset in eval mode, not the training loss), the target's split (val), and "
        "test/<m>, reported once at the configuration chosen on val and never used to choose; "
        "gap: train/<m> - test/<m> (nan where a split is missing)."
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
    data["tensor_bytes_mean"] = agg["tensor_bytes_mean"]
    for col in rel:
        data[f"{col}_mean"] = agg[f"{col}_mean"]
        data[f"{col}_std"] = agg[f"{col}_std"]
        data[f"{col}_rel"] = rel[col]
    shown = _key_columns(agg)
    shown["State bytes/param"] = agg["state_bytes_per_param_mean"].map(lambda x: num(x, ".3g"))
    shown["State x AdamW"] = [num(x, ".2f") for x in rel["state_bytes_per_param"]]
    shown["Params+grads+state (MiB)"] = agg["tensor_bytes_mean"].map(lambda x: num(x / MIB, ".3g"))
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
        + ". Params+grads+state: exact bytes of parameters, their gradients and the optimizer "
        "state. Peak memory: cuda_max_allocated on a GPU; on a CPU cpu_rss_above_baseline, the "
        "resident-set high-water mark above the process's resident set before the model was "
        "built (includes activations and allocator slack); cpu_peak_rss (older records, or not "
        "Linux): the whole process. Peak memory is compared only between runs of the same kind."
    )
    return Table("memory", "Memory", caption, data, shown)


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
