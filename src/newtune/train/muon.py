"""`optimizer: muon`, as axolotl 0.21.0 runs it (axolotl-contribs-mit's Muon, after Moonshot's Moonlight).

Which parameter gets what (axolotl's MuonOptimizerFactory):
- trainable matrices (2-D) but the embeddings, the LM head and peft's modules_to_save copies: Muon, i.e.
  SGD momentum 0.95 with Nesterov, the update orthogonalised by 5 Newton-Schulz steps in bf16, its rate scaled
  by 0.2·sqrt(max(rows, cols)) so its RMS matches AdamW's (torch.optim.Muon's `match_rms_adamw`);
- the embeddings, the LM head and modules_to_save: AdamW (betas `adam_beta1`/`adam_beta2` when both are set,
  else (0.95, 0.95); eps `adam_epsilon`), in Moonlight's form;
- parameters of fewer than 2 dimensions (biases, norm weights): none, so they are not updated (axolotl
  0.21.0 passes them to no optimizer; `train` says how many).
Weight decay (`weight_decay`, unscaled rate) applies to every parameter the optimizer holds.
"""

from __future__ import annotations

import math
from typing import Any

import torch

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # quintic Newton-Schulz, as axolotl's and torch.optim.Muon's
ADAMW_NAMES = ("embed_tokens", "lm_head")


def orthogonalised(g: torch.Tensor, steps: int) -> torch.Tensor:
    """axolotl's zeropower_via_newtonschulz5: about U·Vᵀ of g's SVD, computed in bf16."""
    a, b, c = NS_COEFFICIENTS
    x = g.bfloat16()
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    x = x / (x.norm() + 1e-7)  # spectral norm at most 1
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """One optimizer, two rules: Muon on the groups with use_muon, Moonlight's AdamW on the others."""

    def __init__(self, groups: list[dict], *, lr: float, weight_decay: float, betas: tuple[float, float], eps: float,
                 momentum: float = 0.95, nesterov: bool = True, ns_steps: int = 5) -> None:
        defaults = {"lr": lr, "wd": weight_decay, "momentum": momentum, "nesterov": nesterov, "ns_steps": ns_steps,
                    "adamw_betas": betas, "adamw_eps": eps, "use_muon": False}
        super().__init__(groups, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    (self._muon if group["use_muon"] else self._adamw)(p, group)
        return loss

    def _muon(self, p: torch.Tensor, group: dict) -> None:
        g, state, lr = p.grad, self.state[p], group["lr"]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(g)
        buf = state["momentum_buffer"]
        buf.mul_(group["momentum"]).add_(g)
        g = g.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
        update = orthogonalised(g, group["ns_steps"])
        p.mul_(1 - lr * group["wd"])
        p.add_(update.to(p.dtype), alpha=-lr * 0.2 * math.sqrt(max(p.shape[0], p.shape[1])))

    def _adamw(self, p: torch.Tensor, group: dict) -> None:
        g, state, lr = p.grad, self.state[p], group["lr"]
        beta1, beta2 = group["adamw_betas"]
        if "step" not in state:
            state["step"], state["moment1"], state["moment2"] = 0, torch.zeros_like(g), torch.zeros_like(g)
        state["step"] += 1
        state["moment1"].lerp_(g, 1 - beta1)
        state["moment2"].lerp_(g.square(), 1 - beta2)
        direction = state["moment1"] / (group["adamw_eps"] + state["moment2"].sqrt())
        scale = (1 - beta1 ** state["step"]) / (1 - beta2 ** state["step"]) ** 0.5
        p.mul_(1 - lr * group["wd"])
        p.add_(direction, alpha=-lr / scale)


def muon_groups(model: Any) -> tuple[list[dict], int]:
    """([Muon group, AdamW group] without empty ones, the number of trainable parameters left out)."""
    matrices, others, left_out = [], [], 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2:
            left_out += 1
        elif name.endswith("modules_to_save.default.weight") or any(n in name for n in ADAMW_NAMES):
            others.append(p)
        else:
            matrices.append(p)
    groups = [{"params": matrices, "use_muon": True}, {"params": others, "use_muon": False}]
    return [g for g in groups if g["params"]], left_out


def build_muon(model: Any, t: Any) -> Muon:
    """axolotl's MuonOptimizerFactory: adam_beta1/2 only when both are set, as axolotl reads them."""
    import logging

    groups, left_out = muon_groups(model)
    if not groups:
        from newtune.errors import NewtuneError

        raise NewtuneError("optimizer", "muon: the model has no trainable matrix", "check adapter and lora_target_modules")
    if left_out:
        logging.getLogger("newtune.train").warning(
            "optimizer: muon leaves %d trainable parameters of fewer than 2 dimensions (biases, norms) unchanged, "
            "as axolotl 0.21.0 does", left_out)
    set_betas = {"adam_beta1", "adam_beta2"} <= t.model_fields_set
    betas = (t.adam_beta1, t.adam_beta2) if set_betas else (0.95, 0.95)
    return Muon(groups, lr=t.learning_rate, weight_decay=t.weight_decay, betas=betas, eps=t.adam_epsilon)
