"""`activation_offloading: true` (and axolotl's older `gradient_checkpointing: offload`): the tensors autograd
saves for backward during the forward pass are kept in CPU memory (torch.autograd.graph.save_on_cpu) and
brought back for backward. With gradient checkpointing, what is saved are the layer inputs the recomputation
starts from, as in axolotl. On a CPU the tensors already live there: the same result, tested, at no saving.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any


def saved_on_cpu(enabled: bool | str, device_type: str) -> Any:
    if not enabled:
        return nullcontext()
    import torch

    return torch.autograd.graph.save_on_cpu(pin_memory=device_type == "cuda")
