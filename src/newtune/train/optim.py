"""Optimizer and learning-rate schedule names (axolotl's) → torch objects.

Weight decay applies to matrices only: biases, norm weights and other 1-D parameters get none.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

from newtune.config.train import TrainConfig
from newtune.errors import NewtuneError

BNB_OPTIMIZERS = {  # name → bitsandbytes.optim class
    "adamw_bnb_8bit": "AdamW8bit",
    "adamw_8bit": "AdamW8bit",
    "paged_adamw_8bit": "PagedAdamW8bit",
    "paged_adamw_32bit": "PagedAdamW32bit",
}


def decays(name: str, param: Any) -> bool:
    """Whether weight decay applies: not to biases, norms or any other 1-D parameter."""
    lowered = name.lower()
    return param.ndim >= 2 and not lowered.endswith("bias") and "norm" not in lowered


def param_groups(model: Any, weight_decay: float) -> list[dict]:
    """Trainable parameters in two groups, with and without weight decay (empty groups left out)."""
    with_decay, without = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (with_decay if decays(name, p) else without).append(p)
    groups = [{"params": with_decay, "weight_decay": weight_decay}, {"params": without, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise NewtuneError("adapter", "the model has no trainable parameters", "check adapter and lora_target_modules")
    return groups


def build_optimizer(model: Any, t: TrainConfig, device_type: str) -> Any:
    """The optimizer named by `optimizer:`, over the model's trainable parameters."""
    import torch

    if t.optimizer == "muon":  # its own split of the parameters (train/muon.py)
        from newtune.train.muon import build_muon

        return build_muon(model, t)
    groups = param_groups(model, t.weight_decay)
    betas, lr, eps = (t.adam_beta1, t.adam_beta2), t.learning_rate, t.adam_epsilon
    name = t.optimizer
    if name in ("adamw_torch", "adamw_hf"):  # transformers dropped its own AdamW; adamw_hf is torch's
        # On CPU torch's default is a loop over parameters (LoRA: hundreds of small ones); the fused
        # kernel does the same update in one pass, 4x faster for SmolLM2's 420 LoRA matrices.
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=True if device_type == "cpu" else None)
    if name == "adamw_torch_fused":
        if device_type not in ("cuda", "cpu", "mps", "xpu"):
            raise NewtuneError("optimizer", f"adamw_torch_fused is not available on {device_type}", "use adamw_torch")
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=True)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(groups, lr=lr, scale_parameter=False, relative_step=False, warmup_init=False)
    if name in BNB_OPTIMIZERS:
        return bnb_optimizer(name, groups, t, device_type)
    if name in TORCHAO_OPTIMIZERS:
        return torchao_optimizer(name, groups, t, device_type)
    raise NewtuneError("optimizer", f"unknown optimizer '{name}'")  # the config's Literal makes this a bug


def bnb_optimizer(name: str, groups: list[dict], t: TrainConfig, device_type: str) -> Any:
    """8-bit and paged AdamW from bitsandbytes; they need the package and a CUDA GPU."""
    if device_type != "cuda":
        raise NewtuneError("optimizer", f"{name} needs a CUDA GPU (bitsandbytes), and this run has none",
                           "use optimizer: adamw_torch")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise NewtuneError("optimizer", f"{name} needs the bitsandbytes package, which is not installed",
                           "pip install bitsandbytes, or use optimizer: adamw_torch")
    import bitsandbytes.optim as bnb_optim

    cls = getattr(bnb_optim, BNB_OPTIMIZERS[name])
    return cls(groups, lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2), eps=t.adam_epsilon)


TORCHAO_OPTIMIZERS = {"adamw_torch_8bit": "AdamW8bit", "adamw_torch_4bit": "AdamW4bit"}  # torchao.optim classes


def torchao_optimizer(name: str, groups: list[dict], t: TrainConfig, device_type: str) -> Any:
    """torchao's low-bit AdamW (8-bit or 4-bit optimizer state); it needs a CUDA GPU and the package."""
    if device_type != "cuda":
        raise NewtuneError("optimizer", f"{name} needs a CUDA GPU (torchao low-bit AdamW), and this run has none",
                           "use optimizer: adamw_torch")
    if importlib.util.find_spec("torchao") is None:
        raise NewtuneError("optimizer", f"{name} needs the torchao package, which is not installed",
                           "pip install torchao, or use optimizer: adamw_torch")
    import torchao.optim

    cls = getattr(torchao.optim, TORCHAO_OPTIMIZERS[name])
    return cls(groups, lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2), eps=t.adam_epsilon)


def warmup_steps(t: TrainConfig, total_steps: int) -> int:
    """warmup_steps, else warmup_ratio × total, else axolotl's default of 3% (at most 100 steps)."""
    if t.warmup_steps is not None:
        return t.warmup_steps
    if t.warmup_ratio is not None:
        return math.ceil(t.warmup_ratio * total_steps)
    return min(int(0.03 * total_steps), 100)


def build_scheduler(optimizer: Any, t: TrainConfig, total_steps: int) -> Any:
    """The `lr_scheduler:` schedule over `total_steps` optimizer steps (transformers.get_scheduler).

    `cosine` with `cosine_min_lr_ratio` decays to that share of the peak instead of to zero; with
    `cosine_constant_lr_ratio` too it reaches the floor at that share of the steps and stays there, and
    `lr_quadratic_warmup` warms up quadratically (axolotl's schedules, utils/schedulers.py).
    """
    from transformers import get_scheduler

    name, extra = t.lr_scheduler, {}
    warmup = warmup_steps(t, total_steps)
    if name == "cosine" and (t.lr_quadratic_warmup or t.cosine_constant_lr_ratio is not None):
        from torch.optim.lr_scheduler import LambdaLR

        return LambdaLR(optimizer, lambda step: cosine_factor(step, warmup, total_steps, t))
    if name == "cosine" and t.cosine_min_lr_ratio is not None:
        name = "cosine_with_min_lr"
    if name == "cosine_with_min_lr":
        extra = {"min_lr_rate": t.cosine_min_lr_ratio if t.cosine_min_lr_ratio is not None else 0.0}
    return get_scheduler(name, optimizer, num_warmup_steps=warmup,
                         num_training_steps=total_steps, scheduler_specific_kwargs=extra)


def cosine_factor(step: int, warmup: int, total: int, t: TrainConfig) -> float:
    """axolotl's cosine with quadratic warmup, or with decay to min_lr_ratio until constant_lr_ratio × total."""
    if t.lr_quadratic_warmup:
        if step < warmup:
            return (step / max(1, warmup)) ** 2
        progress = (step - warmup) / max(1, total - warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    if step < warmup:
        return step / max(1, warmup)
    floor = t.cosine_min_lr_ratio or 0.0
    constant_from = int(total * t.cosine_constant_lr_ratio)
    progress = (min(step, constant_from) - warmup) / max(1, constant_from - warmup)
    return max(0.0, (1 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))) + floor
