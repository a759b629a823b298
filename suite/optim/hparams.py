"""The hyperparameters of one group's step, as every path of a family's functional core
takes them: one record per family instead of the same keyword list in each path.

- :class:`AdamHparams`: Adam, AdamW and their 8-bit forms (``amsgrad`` False there), for
  :func:`suite.optim.adam.adam`, :func:`suite.optim.adam8bit.adam8bit`, their single-tensor
  and foreach paths and the fused ones of :mod:`suite.optim.kernels`.
- :class:`SGDHparams`: SGD, for :func:`suite.optim.sgd.sgd` and its paths.

``of(group, ...)`` reads a parameter group's (already validated) values as Python floats
and bools, as the optimizer's ``step`` hands them on.
"""

from __future__ import annotations

from dataclasses import dataclass

from suite.optim.optimizer import as_float

__all__ = ["AdamHparams", "SGDHparams"]


@dataclass(frozen=True)
class AdamHparams:
    r"""Learning rate :math:`\eta`, :math:`\beta_1`, :math:`\beta_2`, :math:`\epsilon`,
    weight decay :math:`\lambda` (``decoupled``: AdamW's, on :math:`p`; else L2, on
    :math:`g`), ``maximize`` and ``amsgrad`` (:mod:`suite.optim.adam` has the math)."""

    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    decoupled: bool
    maximize: bool
    amsgrad: bool = False

    @classmethod
    def of(cls, group: dict, decoupled: bool) -> AdamHparams:
        beta1, beta2 = group["betas"]
        return cls(
            lr=as_float("lr", group["lr"]),
            beta1=as_float("betas[0]", beta1),
            beta2=as_float("betas[1]", beta2),
            eps=as_float("eps", group["eps"]),
            weight_decay=as_float("weight_decay", group["weight_decay"]),
            decoupled=decoupled,
            maximize=group["maximize"],
            amsgrad=group.get("amsgrad", False),
        )


@dataclass(frozen=True)
class SGDHparams:
    r"""Learning rate :math:`\eta`, momentum :math:`\mu`, dampening :math:`\tau`, L2
    weight decay :math:`\lambda`, ``nesterov`` and ``maximize`` (:mod:`suite.optim.sgd`)."""

    lr: float
    momentum: float
    dampening: float
    weight_decay: float
    nesterov: bool
    maximize: bool

    @classmethod
    def of(cls, group: dict) -> SGDHparams:
        return cls(
            lr=as_float("lr", group["lr"]),
            momentum=as_float("momentum", group["momentum"]),
            dampening=as_float("dampening", group["dampening"]),
            weight_decay=as_float("weight_decay", group["weight_decay"]),
            nesterov=group["nesterov"],
            maximize=group["maximize"],
        )
