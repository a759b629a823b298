"""One look per optimizer across every plot: colour by family (8-bit state a darker shade
of it), line style by implementation (in-house solid, torch.optim dashed, bitsandbytes
dotted), so two implementations of one algorithm are the same colour and tell apart by
dash, and a curve hidden under another shows as a dashed line on a solid one."""

from __future__ import annotations

FAMILY_COLOURS = {  # (32-bit, 8-bit)
    "sgd": ("#1f77b4", "#0b3c61"),
    "adam": ("#2ca02c", "#145214"),
    "adamw": ("#d62728", "#7a1414"),
}
OTHER = ("#7f7f7f", "#3f3f3f")
IMPL_STYLES = {"inhouse": "-", "torch": "--", "bnb": ":"}
IMPL_NAMES = {"inhouse": "in-house", "torch": "torch.optim", "bnb": "bitsandbytes"}


def colour(family: str, state_bits: object = 32) -> str:
    pair = FAMILY_COLOURS.get(str(family), OTHER)
    return pair[1] if state_bits == 8 else pair[0]


def linestyle(impl: str) -> str:
    return IMPL_STYLES.get(str(impl), "-.")


def legend_note() -> str:
    return (
        "colour: family (darker: 8-bit state); line: in-house solid, torch.optim dashed, "
        "bitsandbytes dotted"
    )
