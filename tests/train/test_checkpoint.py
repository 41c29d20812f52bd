"""Checkpoints: atomic, pruned, complete-only resume, and a resumed run equal to an uninterrupted one."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
import torch
from tiny_run import losses, tiny_run_fixture  # noqa: F401 (the tiny_run fixture)

from newtune.config.train import TrainConfig
from newtune.errors import NewtuneError
from newtune.train import checkpoint as ckpt
from newtune.train.loop import run_training
from newtune.train.metrics import read_metrics


def test_saves_prunes_and_resumes_exactly(tiny_run, tmp_path):
    # 8 rows / micro_batch_size 2 = 4 steps per epoch, 2 epochs; dropout makes the RNG state matter.
    keys = {"num_epochs": 2, "save_strategy": None, "save_steps": 2, "save_total_limit": 2, "lora_dropout": 0.3}
    full = run_training(*tiny_run(out="full", **keys))
    out = full.output_dir
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint-")) == ["checkpoint-4", "checkpoint-6"]
    assert not list(out.glob(".tmp-*"))
    meta = json.loads((out / "checkpoint-6" / ckpt.MARKER).read_text())
    assert (meta["step"], meta["epoch"], meta["batch_in_epoch"], meta["world_size"]) == (6, 1, 2, 1)
    for name in ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state_0.pth", "newtune.yml",
                 "tokenizer.json"):
        assert (out / "checkpoint-6" / name).is_file(), name

    # A second run stopped after step 4 (its checkpoint copied in), then resumed: same losses, same weights.
    part = tmp_path / "part"
    part.mkdir()
    shutil.copytree(out / "checkpoint-4", part / "checkpoint-4")
    (part / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in read_metrics(out) if r["step"] <= 4))
    resumed = run_training(*tiny_run(out="part", auto_resume_from_checkpoints=True, **keys))
    assert resumed.steps == 8
    assert [r["step"] for r in read_metrics(part)] == list(range(1, 9))
    assert losses(part) == losses(out)
    for (name, a), (_, b) in zip(full.model.named_parameters(), resumed.model.named_parameters(), strict=True):
        assert torch.equal(a, b), name


def test_resume_needs_a_complete_checkpoint(tmp_path):
    broken = tmp_path / "checkpoint-3"
    broken.mkdir()
    with pytest.raises(NewtuneError, match="not a complete newtune checkpoint"):
        ckpt.resume_path(TrainConfig(resume_from_checkpoint=str(broken)))
    with pytest.raises(NewtuneError, match="does not exist"):
        ckpt.resume_path(TrainConfig(resume_from_checkpoint=str(tmp_path / "nope")))
    good = tmp_path / "checkpoint-2"
    good.mkdir()
    (good / ckpt.MARKER).write_text("{}")
    (tmp_path / "checkpoint-10").mkdir()  # newer, but incomplete: never taken
    assert ckpt.resume_path(TrainConfig(output_dir=str(tmp_path), auto_resume_from_checkpoints=True)) == good
    assert ckpt.resume_path(TrainConfig(output_dir=str(tmp_path))) is None
    assert ckpt.resume_path(TrainConfig(output_dir=str(tmp_path / "empty"), auto_resume_from_checkpoints=True)) is None


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tiny_run, monkeypatch):
    cfg, console = tiny_run(out="full", num_epochs=1, save_strategy="steps", save_steps=1)
    real_save, calls = torch.save, []

    def failing_save(obj, f, *args, **kwargs):
        calls.append(str(f))
        if "checkpoint-2" in str(f) and str(f).endswith("optimizer.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(NewtuneError, match="could not write checkpoint checkpoint-2") as e:
        run_training(cfg, console)
    out = Path(cfg.train.output_dir)
    assert "checkpoint-1 is intact" in e.value.hint
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["checkpoint-1"]  # no checkpoint-2, no .tmp-*
    assert ckpt.is_complete(out / "checkpoint-1")
    assert any(c.endswith("checkpoint-2/optimizer.pt") for c in calls)


def test_replace_dir_keeps_one_complete_copy(tmp_path):
    final, tmp = tmp_path / "checkpoint-5", tmp_path / ".tmp-checkpoint-5"
    final.mkdir()
    (final / "old").write_text("1")
    tmp.mkdir()
    (tmp / "new").write_text("2")
    ckpt.replace_dir(tmp, final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-5"]
    assert [p.name for p in final.iterdir()] == ["new"]


def test_remove_partial_and_prune(tmp_path):
    for step in (1, 2, 3):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / ckpt.MARKER).write_text("{}")
    (tmp_path / ".tmp-checkpoint-4").mkdir()
    ckpt.remove_partial(tmp_path)
    assert [p.name for p in ckpt.prune(tmp_path, 2)] == ["checkpoint-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-3"]


def test_soft_prompt_resumes_exactly(tiny_run, tmp_path):
    keys = {"adapter": "prompt_tuning", "lora_target_linear": False, "peft_num_virtual_tokens": 4,
            "save_strategy": "steps", "save_steps": 2}
    full = run_training(*tiny_run(out="full", **keys))
    (tmp_path / "part").mkdir()
    resumed = run_training(*tiny_run(out="part", resume_from_checkpoint=str(full.output_dir / "checkpoint-2"), **keys))
    assert resumed.steps == 4
    assert losses(tmp_path / "part") == losses(full.output_dir)[2:]
