"""The loop's micro-batches, collated ahead: in the training process, or in `torch.utils.data.DataLoader`
worker processes (dataloader_num_workers, dataloader_prefetch_factor), pinned for the copy to a CUDA GPU
(dataloader_pin_memory), as the HF Trainer's DataLoader does for axolotl.

The order is the epoch plan's either way (train/batches.py): workers only collate, so a run gives the same
batches, losses and resume position with or without them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from newtune.config.train import TrainConfig
from newtune.train.batches import MicroBatch, shard


class StepBatches(torch.utils.data.Dataset):
    """Item i: this rank's collated micro-batches of the i-th optimizer step from micro-batch `start` of `plan`."""

    def __init__(self, plan: list[MicroBatch], start: int, per_step: int, rank: int, world: int,
                 collate: Callable[[MicroBatch], Any]) -> None:
        self.plan, self.start, self.per_step, self.rank, self.world, self.collate = plan, start, per_step, rank, world, collate

    def __len__(self) -> int:
        return max(0, -(-(len(self.plan) - self.start) // self.per_step))

    def __getitem__(self, i: int) -> list[Any]:
        lo = self.start + i * self.per_step
        return [self.collate(m) for m in shard(self.plan[lo : lo + self.per_step], self.rank, self.world)]


def pins(t: TrainConfig, device_type: str) -> bool:
    """dataloader_pin_memory (default true, as transformers'): page-locked batches only mean something for a GPU copy."""
    return device_type == "cuda" and t.dataloader_pin_memory is not False


def _as_is(batches: list[Any]) -> list[Any]:
    return batches


def step_batches(steps: StepBatches, t: TrainConfig, device_type: str) -> Iterator[list[Any]]:
    """The steps' batches in order; from worker processes when dataloader_num_workers is set."""
    pin = pins(t, device_type)
    if not t.dataloader_num_workers:
        for i in range(len(steps)):
            batches = steps[i]
            yield [b.pin_memory() if hasattr(b, "pin_memory") else b for b in batches] if pin else batches  # pairs: unpinned
        return
    # batch_size=None: each item is already one step's batches; the sampler keeps the plan's order.
    loader = torch.utils.data.DataLoader(steps, batch_size=None, shuffle=False, collate_fn=_as_is, pin_memory=pin,
                                         num_workers=t.dataloader_num_workers, prefetch_factor=t.dataloader_prefetch_factor)
    yield from loader
