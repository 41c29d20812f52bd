"""The language-model loss as a sum over trained tokens, with the LM head applied to those tokens only.

The model runs through its own forward (so peft, accelerate's autocast and DDP wrappers, gradient
checkpointing and a NEFTune hook on the embeddings all apply) with `logits_to_keep=1`, which makes
the built-in head project a single position. A hook on the decoder keeps its final hidden states; the
head then runs on the rows of positions whose next label is trained, in chunks, with cross-entropy in
fp32. A chunk's logits are recomputed in backward rather than kept, so memory for logits stays at one
chunk instead of (batch × length × vocabulary) fp32 values.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from newtune.model.wrappers import is_prompt_learning, unwrap_model
from newtune.train.collate import Batch

CHUNK_TOKENS = 1024  # trained positions per LM-head chunk: 1024 × 49k vocab × 4 B ≈ 200 MB of fp32 logits


def fast_path_applies(model: torch.nn.Module) -> bool:
    """Whether lm_loss_sum can skip the head on untrained positions for this model."""
    if is_prompt_learning(model):
        # The hidden states hold num_virtual_tokens extra positions (or a prefix cache): the batch's
        # positions do not index them. The plain forward handles this; we slice its logits instead.
        return False
    base = unwrap_model(model)
    from torch.distributed.fsdp import FSDPModule

    if isinstance(base, FSDPModule):
        # FSDP2 gathers the root's weights (the head among them) for its own forward and backward only;
        # the head applied after forward would read and write freed shards. Its forward computes the logits.
        return False
    cfg = getattr(base, "config", None)
    if getattr(cfg, "logit_scale", None) is not None or getattr(cfg, "logits_scaling", None) is not None:
        return False  # the head output is rescaled inside forward (Cohere, Granite): use the model's own logits
    if not hasattr(base, "get_decoder") or base.get_output_embeddings() is None:
        return False
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def lm_loss_sum(model: torch.nn.Module, batch: Batch, chunk_tokens: int = CHUNK_TOKENS) -> tuple[torch.Tensor, int]:
    """(sum of token cross-entropy over trained positions, number of trained positions).

    Equals `model(input_ids, labels=labels).loss * n_trained` for a padded batch; for a packed batch
    it is the sum of the rows' losses. The caller divides by the step's trained tokens.
    """
    if not fast_path_applies(model):
        return _plain_loss_sum(model, batch), batch.n_trained
    base = unwrap_model(model)
    captured: list[torch.Tensor] = []

    def keep_hidden(_module: Any, _args: Any, output: Any) -> None:
        captured.append(output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0])

    handle = base.get_decoder().register_forward_hook(keep_hidden)
    try:
        model(**batch.model_inputs(), logits_to_keep=1)  # the built-in head projects one position per row
    finally:
        handle.remove()
    hidden = captured[-1]
    flat = hidden.reshape(-1, hidden.shape[-1])
    where = batch.trained_positions.to(flat.device)
    targets = batch.labels.reshape(-1).to(flat.device)[where + 1]
    head = base.get_output_embeddings()
    # Outside accelerate's autocast (which wraps forward only) the hidden states may be in another dtype.
    flat = flat.to(next(head.parameters()).dtype)
    softcap = getattr(base.config, "final_logit_softcapping", None)
    n = batch.n_trained
    if n == 0:
        # Still a graph over every parameter (with zero gradients), so backward and DDP's reducer,
        # which waits for a gradient from each parameter, behave as on any other micro-batch.
        return 0.0 * _head_ce_sum(head, flat[:1], batch.input_ids.reshape(-1)[:1].to(flat.device), softcap), 0
    total = flat.new_zeros((), dtype=torch.float32)
    for start in range(0, n, chunk_tokens):
        h = flat.index_select(0, where[start : start + chunk_tokens])
        t = targets[start : start + chunk_tokens]
        if n > chunk_tokens and torch.is_grad_enabled():
            # Recompute this chunk's logits in backward instead of keeping them: memory stays at one chunk.
            total = total + checkpoint(_head_ce_sum, head, h, t, softcap, use_reentrant=False)
        else:
            total = total + _head_ce_sum(head, h, t, softcap)
    return total, n


def _head_ce_sum(head: torch.nn.Module, h: torch.Tensor, targets: torch.Tensor, softcap: float | None) -> torch.Tensor:
    logits = head(h).float()
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    return F.cross_entropy(logits, targets, reduction="sum")


def _plain_loss_sum(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Fallback: the model's full logits, then CE on trained positions (full fp32 logits alive here)."""
    out = model(**batch.model_inputs())
    logits = out.logits
    seq = batch.input_ids.shape[1]
    logits = logits[:, -seq:]  # prompt tuning prepends num_virtual_tokens positions; the batch's are last
    flat = logits.reshape(-1, logits.shape[-1])
    where = batch.trained_positions.to(flat.device)
    targets = batch.labels.reshape(-1).to(flat.device)[where + 1]
    return F.cross_entropy(flat.index_select(0, where).float(), targets, reduction="sum")
