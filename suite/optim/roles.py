"""What each parameter is to the model, for optimizers that treat kinds differently.

Muon orthogonalizes the update of the 2-D weights of *hidden* layers; torch's Muon
documentation (torch/optim/_muon.py) says the other parameters, "such as bias, and
embedding, should be optimized by a standard method such as AdamW", and Keller
Jordan's reference implementation gives the output head to AdamW too. So:

    embedding   weights of nn.Embedding modules, and any parameter tied to one (GPT-2's
                lm_head shares wte)
    head        parameters of the last nn.Linear in module order (the classifier or LM head)
    hidden      every other 2-D parameter
    other       every parameter that is not 2-D: biases, norm gains, conv kernels (4-D),
                positional embeddings and tokens (3-D)

:func:`with_roles` adds ``param_roles`` (a list parallel to ``params``) to each of the
task's groups; ``suite.optim.registry.plain_groups`` removes it for every optimizer
that does not read it, so the groups others see are unchanged.
"""

from __future__ import annotations

from torch import nn

ROLES = ("embedding", "head", "hidden", "other")


def param_roles(model: nn.Module) -> dict[int, str]:
    """id(parameter) -> role (see the module docstring)."""
    roles: dict[int, str] = {}
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    head = {id(p) for p in linears[-1].parameters()} if linears else set()
    embedding = {
        id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()
    }
    for p in model.parameters():
        if id(p) in embedding:
            roles[id(p)] = "embedding"
        elif id(p) in head:
            roles[id(p)] = "head"
        else:
            roles[id(p)] = "hidden" if p.ndim == 2 else "other"
    return roles


def with_roles(model: nn.Module, groups: list[dict]) -> list[dict]:
    """The task's param groups, each with ``param_roles`` parallel to its ``params``."""
    roles = param_roles(model)
    return [{**g, "param_roles": [roles.get(id(p), "other") for p in g["params"]]} for g in groups]
