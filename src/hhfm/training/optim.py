"""Optimisers: Ranger = Lookahead(RAdam) as in the reference study, plain RAdam or AdamW."""

from __future__ import annotations

from typing import Mapping

import torch


class Lookahead:
    """Lookahead (Zhang et al. 2019) around a torch optimiser: every k steps, slow += alpha * (fast - slow)."""

    def __init__(self, base: torch.optim.Optimizer, k: int = 6, alpha: float = 0.5):
        self.base, self.k, self.alpha, self.steps = base, k, alpha, 0
        self.slow = [p.detach().clone() for g in base.param_groups for p in g["params"]]

    @property
    def param_groups(self) -> list[dict]:
        return self.base.param_groups

    def step(self) -> None:
        self.base.step()
        self.steps += 1
        if self.steps % self.k == 0:
            with torch.no_grad():
                for p, s in zip((p for g in self.param_groups for p in g["params"]), self.slow):
                    s.add_(p - s, alpha=self.alpha)
                    p.copy_(s)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"base": self.base.state_dict(), "slow": self.slow, "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state["base"])
        self.steps = state["steps"]
        for s, saved in zip(self.slow, state["slow"]):
            s.copy_(saved)


def build_optimizer(model: torch.nn.Module, name: str, lr: float, weight_decay: float = 0.0):
    """`ranger` | `radam` | `adamw` over the model; no weight decay on biases, norms, scales, cls_token."""
    decay, no_decay = [], []
    for pname, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or pname.endswith("cls_token") else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    base = torch.optim.RAdam(groups, lr=lr, betas=(0.95, 0.999), eps=1e-5, decoupled_weight_decay=True)
    return Lookahead(base) if name == "ranger" else base


def set_base_lrs(optimizer, lrs: Mapping[int, float] | None = None) -> list[float]:
    """Record each param group's starting LR as `base_lr` (the schedule multiplies it); returns them."""
    for i, g in enumerate(optimizer.param_groups):
        g.setdefault("base_lr", (lrs or {}).get(i, g["lr"]))
    return [g["base_lr"] for g in optimizer.param_groups]
