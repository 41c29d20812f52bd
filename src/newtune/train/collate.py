"""Encoded rows → tensors: padded batches, and padding-free packed batches with per-row position_ids.

Packed batches carry no attention_mask. transformers (5.x, masking_utils) reads a packed layout from
position_ids that restart at 0 when the 2D attention_mask is None and no KV cache is passed: SDPA and
eager get a causal block-diagonal mask, flash_attention_2 runs varlen over the same boundaries. The
forward must therefore pass `use_cache=False` (the config default creates a cache, which turns the
detection off and lets rows attend across boundaries); `Batch.model_inputs()` does.

flash_attention_2 reads packed position_ids only when the batch has one row (transformers'
`_is_packed_sequence`), and then syncs with the GPU in every layer to find the boundaries. So for it,
and for newtune's per-document CPU attention (model/patches.py), `flat_batch` puts all rows in one
unpadded row and passes the boundaries as `cu_seq_lens_q/k` and `max_length_q/k`, computed here on
the host: no padding, packed or not. Plain SDPA keeps bins as separate rows: one long row would make
its masked attention cost grow with the square of the whole micro-batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from newtune.data.types import IGNORE

Row = Mapping[str, Sequence[int]]  # an Encoded row: input_ids and labels of equal length


@dataclass(frozen=True, slots=True)
class Batch:
    """One micro-batch. `n_trained` counts labels the loss sees after the shift (labels[:, 1:] != -100)."""

    input_ids: torch.Tensor  # (B, T) int64
    labels: torch.Tensor  # (B, T) int64; -100 on padding, prompts and each packed row's first token
    attention_mask: torch.Tensor | None  # (B, T) 1/0 for padded batches; None for packed ones
    position_ids: torch.Tensor | None  # (B, T) restarting at 0 per packed row; None for padded ones
    trained_positions: torch.Tensor  # (n_trained,) flat indices b*T + t of positions whose next label is trained
    n_trained: int  # a plain int, counted on the host: reading it never syncs with the device
    n_tokens: int  # real tokens, padding excluded (for tokens/s)
    varlen: dict[str, Any] | None = None  # cu_seq_lens_q/k (int32) and max_length_q/k for flash varlen
    layout_width: int | None = None  # flat batches: the width the padded/packed layout would have had
    task_ids: torch.Tensor | None = None  # (B,) multitask prompt tuning: each row's task

    @property
    def width(self) -> int:
        """Sequence length of the padded or packed layout (NEFTune scales its noise by it)."""
        return self.layout_width or self.input_ids.shape[1]

    @property
    def packed(self) -> bool:
        return self.position_ids is not None

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments for the model's forward (labels excluded: lm_loss_sum computes the loss)."""
        kw: dict[str, Any] = {"input_ids": self.input_ids, "use_cache": False}
        if self.attention_mask is not None:
            kw["attention_mask"] = self.attention_mask
        if self.position_ids is not None:
            kw["position_ids"] = self.position_ids
        if self.varlen is not None:
            kw.update(self.varlen)
        if self.task_ids is not None:
            kw["task_ids"] = self.task_ids
        return kw

    def to(self, device: torch.device | str, non_blocking: bool = True) -> Batch:
        return self.map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Page-locked copies, so the copy to a GPU is asynchronous (a DataLoader with pin_memory calls this)."""
        return self.map(lambda t: t.pin_memory())

    def map(self, fn: Any) -> Batch:
        """This batch with `fn` applied to each tensor."""
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else fn(t)

        varlen = None
        if self.varlen is not None:
            varlen = {k: move(v) if isinstance(v, torch.Tensor) else v for k, v in self.varlen.items()}
        return replace(self, input_ids=move(self.input_ids), labels=move(self.labels),
                       attention_mask=move(self.attention_mask), position_ids=move(self.position_ids),
                       trained_positions=move(self.trained_positions), varlen=varlen, task_ids=move(self.task_ids))


def _target_len(longest: int, pad_to: int | None) -> int:
    if pad_to is not None:
        if longest > pad_to:
            raise ValueError(f"a sequence of {longest} tokens does not fit pad_to={pad_to}")
        return pad_to
    return longest


def _check(row: Row) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(row["input_ids"], dtype=np.int64)
    labels = np.asarray(row["labels"], dtype=np.int64)
    if ids.shape != labels.shape or ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"a row needs non-empty input_ids and labels of equal length, got {ids.shape} and {labels.shape}")
    return ids, labels


def _trained_positions(labels: np.ndarray) -> torch.Tensor:
    """Flat indices b*T + t of every position t whose target labels[b, t+1] is trained."""
    b, t = np.nonzero(labels[:, 1:] != IGNORE)
    return torch.from_numpy(b * labels.shape[1] + t)


def pad_batch(rows: Sequence[Row], pad_id: int, pad_to: int | None = None) -> Batch:
    """Right-padded batch: pad_id and label -100 after each row, attention_mask 0 there.

    `pad_to` (pad_to_sequence_len) pads every batch to one fixed length; else to the longest row.
    """
    pairs = [_check(r) for r in rows]
    width = _target_len(max(len(i) for i, _ in pairs), pad_to)
    ids = np.full((len(pairs), width), pad_id, dtype=np.int64)
    labels = np.full((len(pairs), width), IGNORE, dtype=np.int64)
    mask = np.zeros((len(pairs), width), dtype=np.int64)
    for b, (i, lab) in enumerate(pairs):
        ids[b, : len(i)], labels[b, : len(i)], mask[b, : len(i)] = i, lab, 1
    where = _trained_positions(labels)
    return Batch(torch.from_numpy(ids), torch.from_numpy(labels), torch.from_numpy(mask), None,
                 trained_positions=where, n_trained=len(where), n_tokens=int(mask.sum()))


def pack_batch(bins: Sequence[Sequence[Row]], pad_id: int, pad_to: int | None = None,
               flatten: bool = False) -> Batch:
    """Each bin's rows concatenated into one sequence; position_ids restart at 0 for every row.

    Each row's first label is -100, so no row's first token is the target of the previous row's
    last token; attention stays within a row (see the module docstring). Padding after the last
    row gets its own positions 0..k-1 (a separate, untrained block) and label -100.
    `flatten=True`: all bins' rows in one row of shape (1, tokens), no padding (see `flat_batch`).
    """
    if flatten:
        width = pad_to or max(sum(len(r["input_ids"]) for r in rows) for rows in bins)
        return flat_batch([r for rows in bins for r in rows], width=width)
    seqs = []
    for rows in bins:
        pairs = [_check(r) for r in rows]
        seqs.append((np.concatenate([i for i, _ in pairs]), np.concatenate([lab for _, lab in pairs]),
                     [len(i) for i, _ in pairs]))
    width = _target_len(max(len(s[0]) for s in seqs), pad_to)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    labels = np.full((len(seqs), width), IGNORE, dtype=np.int64)
    pos = np.empty((len(seqs), width), dtype=np.int64)
    n_tokens = 0
    for b, (i, lab, lengths) in enumerate(seqs):
        n = len(i)
        ids[b, :n], labels[b, :n] = i, lab
        starts = np.cumsum([0, *lengths[:-1]])
        labels[b, starts] = IGNORE  # the first token of each row is never a target
        pos[b, :n] = np.arange(n) - np.repeat(starts, lengths)
        pos[b, n:] = np.arange(width - n)
        n_tokens += n
    where = _trained_positions(labels)
    return Batch(torch.from_numpy(ids), torch.from_numpy(labels), None, torch.from_numpy(pos),
                 trained_positions=where, n_trained=len(where), n_tokens=n_tokens)


def flat_batch(rows: Sequence[Row], width: int | None = None) -> Batch:
    """All rows in one unpadded row (1, tokens), positions restarting per row, boundaries in `varlen`.

    The same tokens, labels and attention as `pad_batch` of the rows (or `pack_batch` of bins of
    them): each row attends to itself only. `width`: that layout's sequence length, for NEFTune.
    """
    pairs = [_check(r) for r in rows]
    lengths = np.array([len(i) for i, _ in pairs], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    ids = np.concatenate([i for i, _ in pairs])[None]
    labels = np.concatenate([lab for _, lab in pairs])[None]
    labels[0, starts] = IGNORE
    pos = (np.arange(ids.shape[1]) - np.repeat(starts, lengths))[None]
    cu = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    varlen = {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": int(lengths.max()),
              "max_length_k": int(lengths.max())}
    where = _trained_positions(labels)
    return Batch(torch.from_numpy(ids), torch.from_numpy(labels), None, torch.from_numpy(pos),
                 trained_positions=where, n_trained=len(where), n_tokens=int(lengths.sum()), varlen=varlen,
                 layout_width=width)
