"""Which rows go into which micro-batch, epoch by epoch: seeded, so a resumed run sees the same order.

A micro-batch is a list of sequences; a sequence is an array of row indices (one row, or the rows of
a packed bin). Epoch `e` shuffles with seed `seed + e`, so the plan of any epoch is rebuilt from the
config alone: resuming needs only (epoch, micro-batches already used).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from newtune.data.pack import batches_of_bins, pack_lengths
from newtune.data.rows import Rows

if TYPE_CHECKING:
    from newtune.train.collate import Batch

T = TypeVar("T")

MicroBatch = list[np.ndarray]


def epoch_plan(lengths: np.ndarray, *, batch_size: int, packed: bool, capacity: int, seed: int | None,
               group_size: int | None = None, drop_last: bool = False) -> list[MicroBatch]:
    """Micro-batches of one epoch. seed=None keeps dataset order (evaluation).

    Unpacked: `group_size` (group_by_length) orders the rows as transformers' LengthGroupedSampler over
    batches of that many rows; `drop_last` (dataloader_drop_last) leaves out a last micro-batch that is short.
    """
    if packed:
        return batches_of_bins(pack_lengths(lengths, capacity=capacity, seed=seed), batch_size)
    n = len(lengths)
    if seed is None:
        order = np.arange(n)
    elif group_size:
        order = length_grouped(lengths, group_size, seed)
    else:
        order = np.random.default_rng(seed).permutation(n)
    end = n - n % batch_size if drop_last and n >= batch_size else n
    return [[order[i : i + 1] for i in range(s, min(s + batch_size, end))] for s in range(0, end, batch_size)]


def length_grouped(lengths: np.ndarray, group_size: int, seed: int) -> np.ndarray:
    """transformers' `get_length_grouped_indices`: a seeded permutation cut into mega-batches, each sorted by length,
    longest first. transformers draws from torch's global generator; here a generator seeded as the epoch's order."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    generator = torch.Generator().manual_seed(seed)
    return np.asarray(get_length_grouped_indices(lengths.tolist(), group_size, generator=generator), dtype=np.int64)


def steps_in_epoch(n_micro: int, accumulation: int, world: int) -> int:
    """Optimizer steps per epoch. One process keeps a short last step; several drop it (every rank must step)."""
    per_step = accumulation * world
    return -(-n_micro // per_step) if world == 1 else n_micro // per_step


def collate(rows: Rows, micro: MicroBatch, *, packed: bool, pad_id: int, pad_to: int | None,
            flatten: bool = False) -> Batch:
    """Rows of `micro` fetched in one read and collated (padded, or packed with position_ids).

    flatten (flash_attention_2, per-document CPU attention): the rows go in one unpadded row with
    host-computed boundaries, packed or not (`packed` then only decided which rows share the batch).
    """
    from newtune.train.collate import flat_batch, pack_batch, pad_batch

    got = rows.fetch(np.concatenate(micro), ("input_ids", "labels", "task_id"))
    encoded = [{"input_ids": i, "labels": lab} for i, lab in zip(got["input_ids"], got["labels"], strict=True)]
    if flatten and not packed:
        return flat_batch(encoded, width=pad_to or max(len(r["input_ids"]) for r in encoded))
    if not packed:
        batch = pad_batch(encoded, pad_id, pad_to=pad_to)
        if "task_id" in got:  # multitask prompt tuning (never packed): each row's task picks its prompt
            import torch

            batch = replace(batch, task_ids=torch.tensor(got["task_id"], dtype=torch.long))
        return batch
    bins, start = [], 0
    for seq in micro:
        bins.append(encoded[start : start + len(seq)])
        start += len(seq)
    return pack_batch(bins, pad_id, pad_to=pad_to, flatten=flatten)


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """This rank's share: items rank, rank + world, ... (the same split on every epoch)."""
    return list(items[rank::world])


def eval_batches(rows: Rows, *, batch_size: int, packed: bool, capacity: int, pad_id: int, pad_to: int | None,
                 rank: int = 0, world: int = 1, flatten: bool = False) -> Iterator[tuple[Batch, bool]]:
    """This rank's eval micro-batches in dataset order, as (batch, counts).

    Every rank runs the same number of forward passes (DDP and FSDP forwards are collective): a rank
    whose share is short repeats the first batch with counts=False, and its result is dropped.
    """
    plan = epoch_plan(rows.lengths(), batch_size=batch_size, packed=packed, capacity=capacity, seed=None)
    mine = shard(plan, rank, world)
    rounds = -(-len(plan) // world)
    for i in range(rounds):
        micro = mine[i] if i < len(mine) else plan[0]
        yield collate(rows, micro, packed=packed, pad_id=pad_id, pad_to=pad_to, flatten=flatten), i < len(mine)
