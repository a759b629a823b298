"""One look per optimizer across every plot: colour by family (8-bit state a darker shade
of it), line style by implementation (in-house solid, torch.optim dashed, bitsandbytes
dotted), so two implementations of one algorithm are the same colour and tell apart by
dash, and a curve hidden under another shows as a dashed line on a solid one.

A candidate (a user's optimizer: family ``custom``, or a class from a package the suite
does not ship entries for) is drawn to stand out: its own bright colour, a thick solid
line on top (:func:`emphasis`); the suite's baselines beside it are muted."""

from __future__ import annotations

FAMILY_COLOURS = {  # (32-bit, 8-bit)
    "sgd": ("#1f77b4", "#0b3c61"),
    "adam": ("#2ca02c", "#145214"),
    "adamw": ("#d62728", "#7a1414"),
    "nadamw": ("#ff9896", "#a05a59"),
    "nadam": ("#ff9896", "#a05a59"),
    "radam": ("#9467bd", "#5b3d78"),
    "adafactor": ("#8c564b", "#553329"),
    "lion": ("#e377c2", "#8d3e76"),
    "ademamix": ("#bcbd22", "#6f700f"),
    "muon": ("#17becf", "#0b6f7a"),
    "adamw_schedulefree": ("#ff7f0e", "#9c4b04"),
    "soap": ("#393b79", "#1c1d3d"),
}
OTHER = ("#7f7f7f", "#3f3f3f")
IMPL_STYLES = {"inhouse": "-", "torch": "--", "bnb": ":", "torchao": "-."}
IMPL_NAMES = {"inhouse": "in-house", "torch": "torch.optim", "bnb": "bitsandbytes"}
SUITE_IMPLS = ("inhouse", "torch", "bnb", "schedulefree", "torchao")  # the suite's entries
# Pure hues no family uses (each at least 75 RGB units from every family colour, both shades)
CANDIDATE_COLOURS = ("#0000ff", "#ff00ff", "#00ff7f", "#ffd700")


def is_candidate(family: object, impl: object) -> bool:
    """A user's optimizer, not one of the suite's baselines."""
    return str(family) == "custom" or str(impl) not in SUITE_IMPLS


def candidate_colour(name: object) -> str:
    """A stable bright colour per candidate name (the same in every plot)."""
    return CANDIDATE_COLOURS[sum(map(ord, str(name))) % len(CANDIDATE_COLOURS)]


def emphasis(candidate: bool, any_candidate: bool) -> dict:
    """Line keywords: a candidate thick and on top; baselines muted when one is shown."""
    if candidate:
        return {"lw": 2.4, "zorder": 10, "alpha": 1.0}
    return {"lw": 1.2, "zorder": 2, "alpha": 0.45 if any_candidate else 1.0}


def colour(family: str, state_bits: object = 32, impl: object = None, name: object = None) -> str:
    if impl is not None and is_candidate(family, impl):
        return candidate_colour(name if name is not None else family)
    pair = FAMILY_COLOURS.get(str(family), OTHER)
    return pair[1] if state_bits in (4, 8) else pair[0]


def linestyle(impl: str, family: object = None) -> str:
    if family is not None and is_candidate(family, impl):
        return "-"
    return IMPL_STYLES.get(str(impl), "-.")


def legend_note() -> str:
    return (
        "colour: family (darker: 8- or 4-bit state); line: in-house solid, torch.optim dashed, "
        "bitsandbytes dotted, torchao dash-dot; your optimizer (a candidate): bright, thick, on top"
    )
