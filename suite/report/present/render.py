"""Formatting: numbers and hyperparameters as text, tables as Markdown and LaTeX."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from suite.report.read.rows import HP

MIB = 2**20


@dataclass
class Table:
    name: str  # file stem of the CSV and LaTeX files
    title: str
    caption: str
    data: pd.DataFrame  # numbers (CSV)
    shown: pd.DataFrame  # formatted strings (Markdown, LaTeX)


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
