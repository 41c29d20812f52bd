"""Batch keys of axolotl configs: dataloader_*, group_by_length, include_tkps / include_tokens_per_second,
save_only_model, as the HF Trainer (which axolotl runs) gives them their meaning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_run import losses, tiny_run_fixture  # noqa: F401 (the tiny_run fixture)

from newtune.errors import NewtuneError
from newtune.train.loop import epoch_plan, run_training
from newtune.train.metrics import read_metrics


def test_dataloader_workers_collate_ahead_with_the_same_losses(tiny_run, monkeypatch):
    made = []

    class Spy(torch.utils.data.DataLoader):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(torch.utils.data, "DataLoader", Spy)
    plain, console = tiny_run(out="plain", max_steps=3)
    run_training(plain, console)
    assert not made  # no workers: collated in the training process
    workers, console = tiny_run(out="workers", max_steps=3, dataloader_num_workers=2, dataloader_prefetch_factor=3,
                                dataloader_pin_memory=True)
    run_training(workers, console)
    assert [(m["num_workers"], m["prefetch_factor"]) for m in made] == [(2, 3)]
    assert made[0]["pin_memory"] is False  # no CUDA GPU: nothing to pin (transformers' pin is a no-op there)
    assert losses(workers.train.output_dir) == losses(plain.train.output_dir)  # the same batches, in the same order


class Pinnable:
    def __init__(self) -> None:
        self.pinned = False

    def pin_memory(self) -> Pinnable:
        self.pinned = True
        return self


def test_dataloader_pin_memory_pins_batches_for_a_gpu_copy(tiny_run):
    from newtune.train.feed import StepBatches, step_batches

    steps = StepBatches([[np.arange(1)]] * 4, 0, 2, 0, 1, lambda micro: Pinnable())
    for pin, device, expected in ((None, "cuda", True), (False, "cuda", False), (True, "cpu", False)):
        cfg, _ = tiny_run(dataloader_pin_memory=pin)
        got = [b.pinned for step in step_batches(steps, cfg.train, device) for b in step]
        assert got == [expected] * 4


def test_group_by_length_orders_rows_as_transformers_length_grouped_sampler(tiny_run):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    lengths = np.random.default_rng(0).integers(3, 60, size=37)
    cfg, _ = tiny_run(group_by_length=True, micro_batch_size=2, gradient_accumulation_steps=3, data_seed=7)
    plan = epoch_plan(cfg, lengths, 1)  # epoch 1: seeded by data_seed + 1
    sampler = LengthGroupedSampler(6, lengths=lengths.tolist(), generator=torch.Generator().manual_seed(8))
    assert [int(r[0]) for micro in plan for r in micro] == list(sampler)
    assert all(len(micro) == 2 for micro in plan[:-1])
    plain, _ = tiny_run(micro_batch_size=2, gradient_accumulation_steps=3, data_seed=7)
    assert epoch_plan(plain, lengths, 1) != plan


def test_dataloader_drop_last_leaves_out_a_short_last_micro_batch(tiny_run):
    lengths = np.full(7, 5)
    kept, _ = tiny_run(micro_batch_size=3)
    dropped, _ = tiny_run(micro_batch_size=3, dataloader_drop_last=True)
    assert [len(m) for m in epoch_plan(kept, lengths, 0)] == [3, 3, 1]
    plan = epoch_plan(dropped, lengths, 0)
    assert [len(m) for m in plan] == [3, 3]
    assert [int(r[0]) for m in plan for r in m] == [int(r[0]) for m in epoch_plan(kept, lengths, 0)[:2] for r in m]


def test_token_throughput_metrics_are_logged_as_axolotl_and_transformers_name_them(tiny_run):
    cfg, console = tiny_run(out="tkps", max_steps=3, include_tokens_per_second=True)
    run_training(cfg, console)
    records = [r for r in read_metrics(cfg.train.output_dir) if "loss" in r]
    assert len(records) == 3
    for r in records:  # unpadded batches on CPU: every token fed is a real one
        assert r["tokens/trainable"] == r["trained_tokens"] > 0 and r["tokens/total"] == r["tokens"] > 0
        assert r["num_input_tokens_seen"] == r["tokens/total"]
        assert r["tokens/train_per_sec_per_gpu"] > 0 and r["train_tokens_per_second"] > 0 and r["train_runtime"] > 0
    off, console = tiny_run(out="off", max_steps=1, include_tkps=False)
    run_training(off, console)
    (record,) = [r for r in read_metrics(off.train.output_dir) if "loss" in r]
    assert not {k for k in record if k.startswith("tokens/") or k.startswith("train_") or k == "num_input_tokens_seen"}


def test_save_only_model_checkpoints_hold_the_weights_only_and_are_not_resumed(tiny_run):
    cfg, console = tiny_run(out="only", max_steps=2, save_strategy="steps", save_steps=1, save_only_model=True)
    run_training(cfg, console)
    ckpt = cfg.train.output_dir + "/checkpoint-1"
    from pathlib import Path

    names = {p.name for p in Path(ckpt).iterdir()}
    assert "adapter_model.safetensors" in names
    assert not names & {"optimizer.pt", "scheduler.pt", "rng_state_0.pth"}
    again, console = tiny_run(out="only", max_steps=2, resume_from_checkpoint=ckpt)
    with pytest.raises(NewtuneError, match="save_only_model") as e:
        run_training(again, console)
    assert "lora_model_dir" in e.value.hint
