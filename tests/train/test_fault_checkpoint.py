"""Faults in checkpoints: each file's size and sha256 are recorded at save and checked before resuming; a
damaged newest checkpoint is skipped with a warning naming it; a checkpoint of another kind or shape of
adapter is refused with one message."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_run import tiny_keys, tiny_run_fixture  # noqa: F401 (the tiny_run fixture)

from newtune.config.train import TrainConfig
from newtune.errors import NewtuneError
from newtune.train import checkpoint as ckpt
from newtune.train.loop import run_training

NEWTUNE = str(Path(sys.executable).parent / "newtune")
KEYS = {"save_strategy": "steps", "save_steps": 1, "max_steps": 3}


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def saved(tiny_run):
    """A LoRA run's output_dir holding checkpoint-1 and checkpoint-2 (the end of the run is no checkpoint)."""
    result = run_training(*tiny_run(out="saved", **KEYS))
    out = result.output_dir
    assert [p.name for p in ckpt.checkpoints(out)] == ["checkpoint-1", "checkpoint-2"]
    return out


def test_manifest_records_every_file_and_catches_damage(saved):
    c2 = saved / "checkpoint-2"
    files = json.loads((c2 / ckpt.MARKER).read_text())["files"]
    assert {"adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state_0.pth"} <= files.keys()
    assert files["optimizer.pt"]["size"] == (c2 / "optimizer.pt").stat().st_size
    assert ckpt.damage(c2) is None
    # Same size, other bytes (a bit flip): only the hash sees it.
    raw = bytearray((c2 / "scheduler.pt").read_bytes())
    raw[-1] ^= 1
    (c2 / "scheduler.pt").write_bytes(bytes(raw))
    assert "scheduler.pt differs from what was saved" in ckpt.damage(c2)
    (c2 / "scheduler.pt").unlink()
    assert ckpt.damage(c2) == "scheduler.pt is missing"


def test_truncated_newest_checkpoint_falls_back_to_the_previous_one(saved, tiny_run, caplog):
    truncate(saved / "checkpoint-2" / "adapter_model.safetensors")
    with caplog.at_level(logging.WARNING, logger="newtune.train.checkpoint"):
        result = run_training(*tiny_run(out="saved", auto_resume_from_checkpoints=True, **KEYS))
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "resuming from checkpoint-1 instead" in warning
    assert "checkpoint-2 is damaged (adapter_model.safetensors has" in warning and "truncated" in warning
    assert result.steps == 3
    # Steps 2 and 3 were trained again from checkpoint-1, and checkpoint-2 saved anew, intact.
    assert ckpt.damage(saved / "checkpoint-2") is None


def test_no_intact_checkpoint_stops_with_one_message(saved):
    for c in ckpt.checkpoints(saved):
        truncate(c / "optimizer.pt")
    t = TrainConfig(output_dir=str(saved), auto_resume_from_checkpoints=True)
    with pytest.raises(NewtuneError, match="no intact checkpoint to resume from") as e:
        ckpt.resume_path(t)
    assert "checkpoint-1 is damaged (optimizer.pt has" in e.value.problem
    assert "checkpoint-2 is damaged" in e.value.problem
    with pytest.raises(NewtuneError, match="checkpoint-2 is damaged: optimizer.pt has"):
        ckpt.resume_path(TrainConfig(resume_from_checkpoint=str(saved / "checkpoint-2")))


def test_cli_exits_2_without_a_traceback_on_damaged_checkpoints(saved, tmp_path, tiny_model_dir):
    for c in ckpt.checkpoints(saved):
        truncate(c / "adapter_model.safetensors")
    config = tmp_path / "run.yml"
    keys = {**tiny_keys(tmp_path, tiny_model_dir), **KEYS, "output_dir": str(saved),
            "auto_resume_from_checkpoints": True}
    config.write_text(yaml.safe_dump(keys))
    res = subprocess.run([NEWTUNE, "train", str(config)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert "no intact checkpoint" in res.stderr and "checkpoint-2 is damaged" in res.stderr


def test_resuming_with_another_lora_r_is_refused(saved, tiny_run):
    with pytest.raises(NewtuneError, match="another adapter: lora_r 4 in the checkpoint, 8 in this run"):
        run_training(*tiny_run(out="saved", auto_resume_from_checkpoints=True, **{**KEYS, "lora_r": 8}))


def test_a_full_finetune_cannot_resume_a_lora_checkpoint_nor_the_reverse(saved, tiny_run, tmp_path):
    with pytest.raises(NewtuneError, match="holds an adapter .* but this run is a full fine-tune"):
        run_training(*tiny_run(out="saved", auto_resume_from_checkpoints=True, adapter=None,
                               lora_target_linear=False, **KEYS))
    full = run_training(*tiny_run(out="full", adapter=None, lora_target_linear=False, save_strategy="steps",
                                  save_steps=1, max_steps=2))
    with pytest.raises(NewtuneError, match="holds full model weights but this run trains an adapter"):
        run_training(*tiny_run(out="lora", resume_from_checkpoint=str(full.output_dir / "checkpoint-1"), **KEYS))


def test_a_checkpoint_without_a_manifest_still_resumes(saved):
    """Checkpoints written before manifests existed have nothing to check against: taken as they are."""
    c1 = saved / "checkpoint-1"
    meta = json.loads((c1 / ckpt.MARKER).read_text())
    del meta["files"]
    (c1 / ckpt.MARKER).write_text(json.dumps(meta))
    shutil.rmtree(saved / "checkpoint-2")
    assert ckpt.resume_path(TrainConfig(output_dir=str(saved), auto_resume_from_checkpoints=True)) == c1
