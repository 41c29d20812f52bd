"""What sits around a transformers model: DDP, torch.compile and peft wrappers, seen through or asked about."""

from __future__ import annotations

import torch


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside DDP/compile and peft wrappers (same parameters, no copies)."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):  # DDP, accelerate
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        elif hasattr(model, "get_base_model") and hasattr(model, "peft_config"):
            model = model.get_base_model()
        else:
            return model


def is_prompt_learning(model: torch.nn.Module) -> bool:
    """peft prompt tuning / p-tuning / prefix tuning: virtual tokens the decoder sees but the batch lacks."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    cfg = getattr(model, "active_peft_config", None)
    return bool(getattr(cfg, "is_prompt_learning", False))
