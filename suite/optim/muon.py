"""Muon for the hidden 2-D weights, AdamW for everything else, as one optimizer.

``torch.optim.Muon`` (torch >= 2.9) accepts only 2-D parameters and its documentation
prescribes AdamW for "other parameters, such as bias, and embedding"; the output head
goes to AdamW too (Keller Jordan's reference). :class:`MuonWithAdamW` splits each of
the task's groups by the roles in ``suite.optim.roles`` (``param_roles``; without them,
by shape: 2-D is hidden) and builds one ``torch.optim.Muon`` and one
``torch.optim.AdamW`` from the halves, keeping each group's own options (its
weight_decay). Both libraries' optimizers do the math; this class only routes.

Muon on hidden weights W (momentum mu, Newton-Schulz orthogonalization NS)::

    B_t = mu B_{t-1} + g_t;   O_t = NS(g_t + mu B_t)  (nesterov)
    W_t = W_{t-1} (1 - lr wd) - lr * adjust(shape) * O_t

Its ``param_groups`` are the two inner optimizers' groups (the same dicts), so an lr
scheduler scales both, each from its own base lr; ``state`` is their union (for state
bytes and telemetry); ``state_dict`` holds both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from suite.optim.registry import ANNOTATIONS


class MuonWithAdamW(torch.optim.Optimizer):
    takes_param_roles = True  # suite.optim.registry.plain_groups passes the roles through

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        weight_decay: float = 0.0,
        adamw_lr: float = 1e-3,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
    ) -> None:
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        muon_groups, adamw_groups = [], []
        for g in groups:
            ps = list(g["params"])
            roles = g.get("param_roles") or ["hidden" if p.ndim == 2 else "other" for p in ps]
            options = {k: v for k, v in g.items() if k not in ("params", *ANNOTATIONS)}
            hidden = [p for p, r in zip(ps, roles, strict=True) if r == "hidden"]
            rest = [p for p, r in zip(ps, roles, strict=True) if r != "hidden"]
            if hidden:
                muon_groups.append({**options, "params": hidden})
            if rest:
                adamw_groups.append({**options, "params": rest})
        self.parts: list[torch.optim.Optimizer] = []
        if muon_groups:
            self.parts.append(
                torch.optim.Muon(
                    muon_groups,
                    lr=lr,
                    momentum=momentum,
                    nesterov=nesterov,
                    ns_steps=ns_steps,
                    adjust_lr_fn=adjust_lr_fn,
                    weight_decay=weight_decay,
                )
            )
        if adamw_groups:
            self.parts.append(
                torch.optim.AdamW(
                    adamw_groups,
                    lr=adamw_lr,
                    betas=tuple(adamw_betas),
                    eps=adamw_eps,
                    weight_decay=weight_decay,
                )
            )
        if not self.parts:
            raise ValueError("optimizer got an empty parameter list")
        everything = [p for part in self.parts for g in part.param_groups for p in g["params"]]
        super().__init__(everything, {"lr": lr})
        self._link()

    def _link(self) -> None:
        self.param_groups = [g for part in self.parts for g in part.param_groups]

    @property
    def muon(self) -> torch.optim.Optimizer | None:
        return next((p for p in self.parts if isinstance(p, torch.optim.Muon)), None)

    @property
    def adamw(self) -> torch.optim.Optimizer | None:
        return next((p for p in self.parts if isinstance(p, torch.optim.AdamW)), None)

    @property
    def state(self) -> dict:  # type: ignore[override]
        return {p: s for part in self.parts for p, s in part.state.items()}

    @state.setter
    def state(self, value: Any) -> None:  # Optimizer.__init__ assigns one; the parts hold it
        pass

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for part in self.parts:
            part.step()
        return loss

    def state_dict(self) -> dict:
        return {"parts": [part.state_dict() for part in self.parts]}

    def load_state_dict(self, state_dict: dict) -> None:
        if len(state_dict["parts"]) != len(self.parts):
            raise ValueError("saved MuonWithAdamW state has a different Muon/AdamW split")
        for part, saved in zip(self.parts, state_dict["parts"], strict=True):
            part.load_state_dict(saved)
        self._link()  # load_state_dict replaces the parts' group dicts
