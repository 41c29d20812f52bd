"""Preference losses (`rl: dpo | ipo`; orpo and simpo in train/reference_free.py): TRL 1.14's DPO losses, per pair,
with the reference model's log-probs.

A micro-batch holds B pairs as 2B rows, [every prompt+chosen; every prompt+rejected], as TRL's
collator builds them. Each row's log-probability is the sum over its completion tokens; the loss of
a pair follows from the four sums (policy/reference × chosen/rejected). The step's loss is the mean
over every pair of the step (its micro-batches on every rank), so accumulation and ranks give the step
one big batch would. The reference model is the policy with its LoRA adapter switched off (no second
copy), or, for a full fine-tune, a frozen copy of the starting weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from newtune.data.preference import COLUMNS
from newtune.data.rows import Rows
from newtune.data.types import Tokenizer
from newtune.model.wrappers import unwrap_model
from newtune.train.loss import CHUNK_TOKENS, fast_path_applies

if TYPE_CHECKING:
    from newtune.config.run import RunConfig

METRICS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
           "logps/rejected")
REFERENCE_FREE = ("orpo", "simpo")  # train/reference_free.py: no reference model
DISCOPOP_TAU = 0.05  # TRL's default; axolotl passes none


@dataclass(frozen=True, slots=True)
class PairBatch:
    """B pairs as 2B right-padded rows: chosen rows first, then rejected ones (TRL's layout)."""

    input_ids: torch.Tensor  # (2B, T)
    attention_mask: torch.Tensor  # (2B, T)
    completion_mask: torch.Tensor  # (2B, T): 1 on chosen/rejected tokens
    n_trained: int  # pairs: the unit the step's loss is a mean over
    n_tokens: int  # real tokens, padding excluded

    @property
    def width(self) -> int:
        return self.input_ids.shape[1]

    def model_inputs(self) -> dict[str, Any]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask, "use_cache": False}

    def to(self, device: Any, non_blocking: bool = True) -> PairBatch:
        return replace(self, **{k: getattr(self, k).to(device, non_blocking=non_blocking)
                                for k in ("input_ids", "attention_mask", "completion_mask")})


def collate_pairs(rows: Sequence[dict[str, list[int]]], pad_id: int, max_length: int | None) -> PairBatch:
    """TRL's DataCollatorForPreference: prompt+completion per row, cut to max_length keeping the start."""
    seqs, masks = [], []
    for side in ("chosen_ids", "rejected_ids"):
        for r in rows:
            ids, mask = r["prompt_ids"] + r[side], [0] * len(r["prompt_ids"]) + [1] * len(r[side])
            seqs.append(ids[:max_length])
            masks.append(mask[:max_length])
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    completion = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (s, m) in enumerate(zip(seqs, masks, strict=True)):
        input_ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        attention[i, : len(s)] = 1
        completion[i, : len(m)] = torch.tensor(m, dtype=torch.long)
    return PairBatch(input_ids, attention, completion, n_trained=len(rows), n_tokens=sum(map(len, seqs)))


def completion_logps(model: torch.nn.Module, batch: PairBatch, chunk_tokens: int = CHUNK_TOKENS) -> torch.Tensor:
    """(2B,) sums of log p(token) over each row's completion tokens, the LM head on those positions only."""
    where, token = token_logps(model, batch, batch.completion_mask, chunk_tokens)
    return token.new_zeros(batch.input_ids.shape[0]).index_add(0, where // batch.width, token)


def token_logps(model: torch.nn.Module, batch: PairBatch, mask: torch.Tensor, chunk_tokens: int = CHUNK_TOKENS,
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(where, log p): each token after the first with `mask` 1, as its flat index b*T + t - 1 into the
    (2B, T) batch, and its log-probability given the tokens before it (the LM head on those positions only)."""
    width = batch.width
    shift_mask = mask[:, 1:]
    where = (shift_mask.nonzero() * torch.tensor([width, 1], device=shift_mask.device)).sum(1)  # b*T + t
    targets = batch.input_ids.reshape(-1)[where + 1]
    if not fast_path_applies(model):
        logits = at_least_fp32(model(**batch.model_inputs()).logits)
        flat = logits.reshape(-1, logits.shape[-1]).index_select(0, where)
        return where, -F.cross_entropy(flat, targets, reduction="none")
    base = unwrap_model(model)
    captured: list[torch.Tensor] = []

    def keep_hidden(_module: Any, _args: Any, output: Any) -> None:
        captured.append(output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0])

    handle = base.get_decoder().register_forward_hook(keep_hidden)
    try:
        model(**batch.model_inputs(), logits_to_keep=1)
    finally:
        handle.remove()
    head = base.get_output_embeddings()
    flat = captured[-1].reshape(-1, captured[-1].shape[-1]).to(next(head.parameters()).dtype)
    softcap = getattr(base.config, "final_logit_softcapping", None)
    parts = []
    for start in range(0, len(where), chunk_tokens):
        h = flat.index_select(0, where[start : start + chunk_tokens])
        t = targets[start : start + chunk_tokens]
        if len(where) > chunk_tokens and torch.is_grad_enabled():
            parts.append(checkpoint(_token_logps, head, h, t, softcap, use_reentrant=False))
        else:
            parts.append(_token_logps(head, h, t, softcap))
    token = torch.cat(parts) if parts else flat.new_zeros(0, dtype=torch.promote_types(flat.dtype, torch.float32))
    return where, token


def at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """Half-precision logits in float32 for the log-softmax; float32 and float64 stay as they are."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _token_logps(head: torch.nn.Module, h: torch.Tensor, targets: torch.Tensor, softcap: float | None) -> torch.Tensor:
    logits = at_least_fp32(head(h))
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    return -F.cross_entropy(logits, targets, reduction="none")


def reference_logps(model: torch.nn.Module, ref_model: torch.nn.Module | None, batch: PairBatch) -> torch.Tensor:
    """The reference log-probs, without gradients: `ref_model`, else `model` with its adapter switched off."""
    with torch.no_grad():
        if ref_model is not None:
            return completion_logps(ref_model, batch)
        peft_model = model
        while not hasattr(peft_model, "disable_adapter"):
            peft_model = peft_model.module  # DDP / accelerate wrappers
        with peft_model.disable_adapter():
            return completion_logps(peft_model, batch)


def pair_losses(loss_types: Sequence[str], weights: Sequence[float], beta: float, smoothing: float,
                policy: torch.Tensor, ref: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(B,) weighted sum of TRL 1.14's per-pair DPO losses; policy/ref/counts are (2B,) [chosen; rejected]."""
    chosen_lr, rejected_lr = (policy - ref).chunk(2)
    t = Terms(beta, smoothing, chosen_lr, rejected_lr, *counts.chunk(2))
    total = torch.zeros_like(chosen_lr)
    for name, weight in zip(loss_types, weights, strict=True):
        total = total + weight * LOSSES[name](t)
    return total


@dataclass(frozen=True, slots=True)
class Terms:
    """What TRL's per-pair losses are made of; chosen/rejected log ratios are policy minus reference."""

    beta: float
    smoothing: float
    chosen_lr: torch.Tensor
    rejected_lr: torch.Tensor
    n_chosen: torch.Tensor  # completion tokens of each side (IPO and sigmoid_norm average by them)
    n_rejected: torch.Tensor

    @property
    def z(self) -> torch.Tensor:
        return self.beta * (self.chosen_lr - self.rejected_lr)

    @property
    def per_token_delta(self) -> torch.Tensor:
        return self.chosen_lr / self.n_chosen.clamp(min=1) - self.rejected_lr / self.n_rejected.clamp(min=1)


def _exo(t: Terms) -> torch.Tensor:
    eps = torch.tensor(t.smoothing, device=t.z.device, dtype=t.z.dtype)
    return (torch.sigmoid(t.z) * (F.logsigmoid(t.z) - torch.log1p(-eps))
            + torch.sigmoid(-t.z) * (F.logsigmoid(-t.z) - torch.log(eps)))


def _discopop(t: Terms) -> torch.Tensor:
    modulation = torch.sigmoid(t.z / DISCOPOP_TAU)
    return -F.logsigmoid(t.z) * (1 - modulation) + torch.exp(-t.z) * modulation


# TRL 1.14 DPOTrainer._compute_loss, loss by loss (the names are its loss_type values).
LOSSES = {
    "sigmoid": lambda t: -F.logsigmoid(t.z),
    "hinge": lambda t: torch.relu(1 - t.z),
    # TRL normalises IPO's scores by completion length (confirmed with the IPO authors, says its comment)
    "ipo": lambda t: (t.per_token_delta - 1 / (2 * t.beta)) ** 2,
    "sigmoid_norm": lambda t: -F.logsigmoid(t.beta * t.per_token_delta),
    "exo_pair": _exo,
    "robust": lambda t: (-(1 - t.smoothing) * F.logsigmoid(t.z) + t.smoothing * F.logsigmoid(-t.z))
    / (1 - 2 * t.smoothing),
    "nca_pair": lambda t: (-F.logsigmoid(t.beta * t.chosen_lr) - 0.5 * F.logsigmoid(-t.beta * t.chosen_lr)
                           - 0.5 * F.logsigmoid(-t.beta * t.rejected_lr)),
    "bco_pair": lambda t: -F.logsigmoid(t.beta * t.chosen_lr) - F.logsigmoid(-t.beta * t.rejected_lr),
    "sppo_hard": lambda t: (t.chosen_lr - 0.5 / t.beta) ** 2 + (t.rejected_lr + 0.5 / t.beta) ** 2,
    "apo_zero": lambda t: 1 - torch.sigmoid(t.beta * t.chosen_lr) + torch.sigmoid(t.beta * t.rejected_lr),
    "apo_down": lambda t: torch.sigmoid(t.beta * t.chosen_lr) + 1 - torch.sigmoid(t.z),
    "discopop": _discopop,
}


class PreferenceObjective:
    """What the training loop needs for `rl:`: collate pairs, a step's loss sum, and the reward metrics."""

    def __init__(self, rl: str, pref: Any, *, pad_id: int, max_length: int, ref_model: Any = None) -> None:
        self.loss_types = ["ipo"] if rl == "ipo" else list(pref.dpo_loss_type or ["sigmoid"])
        self.weights = list(pref.dpo_loss_weights or [1.0] * len(self.loss_types))
        self.beta, self.smoothing = pref.beta, pref.dpo_label_smoothing or 0.0
        self.pad_id, self.max_length, self.ref_model = pad_id, max_length, ref_model
        self.sums: torch.Tensor | None = None  # per METRICS, plus the pair count, since the last take

    def collate(self, rows: Rows, micro: list) -> PairBatch:
        import numpy as np

        got = rows.fetch(np.concatenate(micro), COLUMNS)
        return collate_pairs([dict(zip(COLUMNS, r, strict=True)) for r in zip(*got.values(), strict=True)], self.pad_id, self.max_length)

    def loss_sum(self, model: Any, batch: PairBatch) -> tuple[torch.Tensor, int]:
        """(sum over the batch's pairs of their loss, pairs); the reward metrics are accumulated."""
        ref = reference_logps(model, self.ref_model, batch)
        policy = completion_logps(model, batch)
        counts = batch.completion_mask.sum(1).to(policy.dtype)
        losses = pair_losses(self.loss_types, self.weights, self.beta, self.smoothing, policy, ref, counts)
        self.accumulate(policy.detach(), ref)
        return losses.sum(), batch.n_trained

    def evaluate(self, model: Any, rows: Rows, acc: Any, batch_size: int) -> PairEval:
        return evaluate_pairs(model, rows, self, batch_size=batch_size, accelerator=acc)

    def accumulate(self, policy: torch.Tensor, ref: torch.Tensor) -> None:
        chosen_r, rejected_r = (self.beta * (policy - ref)).chunk(2)
        pc, pr = policy.chunk(2)
        row = torch.stack([chosen_r.sum(), rejected_r.sum(), (chosen_r > rejected_r).float().sum(),
                           (chosen_r - rejected_r).sum(), pc.sum(), pr.sum(),
                           torch.tensor(float(len(pc)), device=policy.device)]).double()
        self.sums = row if self.sums is None else self.sums + row

    def take_metrics(self, acc: Any = None, prefix: str = "") -> dict[str, float]:
        """Means over the pairs since the last call (all ranks); a sync point: call at logging steps only."""
        distributed = acc is not None and acc.num_processes > 1
        if self.sums is None and not distributed:
            return {}
        names = self.metric_names()
        sums = self.sums if self.sums is not None else torch.zeros(len(names) + 1, dtype=torch.float64,
                                                                    device=acc.device)
        if distributed:  # every rank takes part, with zeros where it saw no pair
            sums = acc.reduce(sums, "sum")
        self.sums = None
        values = sums.tolist()
        n = values[-1] or math.nan
        return {prefix + name: v / n for name, v in zip(names, values[:-1], strict=True)}

    def metric_names(self) -> tuple[str, ...]:
        return METRICS


def frozen_reference(cfg: RunConfig, model: Any, device: Any) -> Any:
    """A full fine-tune's reference: a frozen copy of the starting weights. None with an adapter (which is
    switched off for the reference instead), and for ORPO and SimPO, which have no reference. Call before the adapter is applied."""
    import copy

    if cfg.adapter.adapter is not None or cfg.data.rl in REFERENCE_FREE:
        return None
    return copy.deepcopy(model).requires_grad_(False).eval().to(device)


def objective_for(cfg: RunConfig, tokenizer: Tokenizer, ref_model: Any) -> PreferenceObjective:
    if cfg.data.rl in REFERENCE_FREE:
        from newtune.train.reference_free import ReferenceFreeObjective

        return ReferenceFreeObjective(cfg.data.rl, cfg.pref, pad_id=tokenizer.pad_token_id,
                                      max_length=cfg.data.sequence_len)
    return PreferenceObjective(cfg.data.rl, cfg.pref, pad_id=tokenizer.pad_token_id, max_length=cfg.data.sequence_len,
                               ref_model=ref_model)


@dataclass
class PairEval:
    loss: float  # mean loss over every eval pair
    metrics: dict[str, float]  # eval_rewards/chosen, ...
    perplexity: float | None = None  # not defined for a preference loss


def evaluate_pairs(model: Any, rows: Rows, objective: PreferenceObjective, *, batch_size: int, accelerator: Any,
                   ) -> PairEval:
    """Mean loss and reward metrics over every eval pair (all ranks), as eval_loss and eval_rewards/..."""
    from newtune.train.batches import shard

    rank, world = accelerator.process_index, accelerator.num_processes
    n = len(rows)
    plan = [[torch.arange(s, min(s + batch_size, n)).numpy()] for s in range(0, n, batch_size)]
    mine = shard(plan, rank, world)
    rounds = -(-len(plan) // world)
    was_training, saved = model.training, objective.sums
    objective.sums = None
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    with torch.no_grad():
        for i in range(rounds):  # every rank runs the same number of forwards (collective under DDP/FSDP)
            counts, before = i < len(mine), objective.sums
            batch = objective.collate(rows, mine[i] if counts else plan[0]).to(accelerator.device)
            loss_sum, pairs = objective.loss_sum(model, batch)
            if counts:
                total[0] += loss_sum.double()
                total[1] += pairs
            else:
                objective.sums = before  # a repeated batch: its metrics are not counted
    model.train(was_training)
    metrics = objective.take_metrics(accelerator, prefix="eval_")
    objective.sums = saved
    if world > 1:
        total = accelerator.reduce(total, "sum")
    loss_sum, pairs = total.tolist()
    return PairEval(loss_sum / pairs if pairs else math.nan, metrics)
