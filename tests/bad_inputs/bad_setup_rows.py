"""Setup of bad-input cases that need files written by code (Parquet, checkpoints), for data/checkpoints/caches."""

from __future__ import annotations

from pathlib import Path


def _alpaca_parquet(path: Path, instructions: list, outputs: list) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"instruction": instructions, "input": [""] * len(outputs), "output": outputs}), path)


def alpaca_parquet_null_instruction(case_dir: Path, fixtures: dict) -> None:
    """Row 5 of six has a null instruction."""
    _alpaca_parquet(case_dir / "d.parquet", ["a", "b", "c", "d", "e", None], ["ok"] * 6)


def alpaca_parquet_int_output(case_dir: Path, fixtures: dict) -> None:
    """The output column holds numbers."""
    _alpaca_parquet(case_dir / "d.parquet", ["a", "b", "c"], [1, 2, 3])


# ---- checkpoints: adapters and checkpoints written by the libraries newtune saves with ----

def _tiny_lora(fixtures: dict, target: Path, r: int) -> None:
    """A LoRA adapter (q_proj, v_proj; rank r) of the tiny test model, saved by peft."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(fixtures["@TINY_MODEL@"])
    get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"],
                                     task_type="CAUSAL_LM")).save_pretrained(target)


def lora_adapter_r4(case_dir: Path, fixtures: dict) -> None:
    """adapter/: a rank-4 LoRA adapter (the case's config asks for another rank)."""
    _tiny_lora(fixtures, case_dir / "adapter", r=4)


def lora_adapter_truncated(case_dir: Path, fixtures: dict) -> None:
    """adapter/: a LoRA adapter whose weights file was cut short (a copy that did not finish)."""
    _tiny_lora(fixtures, case_dir / "adapter", r=8)
    weights = case_dir / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])


def _marked(ckpt: Path, step: int) -> None:
    """Finish `ckpt` as newtune does: the marker with the files' manifest, written last."""
    from newtune.train.checkpoint import TrainState, write_marker

    write_marker(ckpt, TrainState(step=step), world_size=1)


def lora_checkpoint(case_dir: Path, fixtures: dict) -> None:
    """out/checkpoint-2: a complete checkpoint of a LoRA run (the case's config is a full fine-tune)."""
    ckpt = case_dir / "out" / "checkpoint-2"
    _tiny_lora(fixtures, ckpt, r=8)
    _marked(ckpt, 2)


def model_only_checkpoint(case_dir: Path, fixtures: dict) -> None:
    """out/checkpoint-1: a complete checkpoint saved with save_only_model (weights, no optimizer or scheduler)."""
    from newtune.train.checkpoint import TrainState, write_marker

    ckpt = case_dir / "out" / "checkpoint-1"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(bytes(range(256)))
    write_marker(ckpt, TrainState(step=1), world_size=1, model_only=True)


def damaged_checkpoints(case_dir: Path, fixtures: dict) -> None:
    """out/checkpoint-1 and -2: complete checkpoints whose weights were later truncated and changed."""
    for step in (1, 2):
        ckpt = case_dir / "out" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "model.safetensors").write_bytes(bytes(range(256)) * 8)
        (ckpt / "scheduler.pt").write_bytes(b"x" * 64)
        _marked(ckpt, step)
    (case_dir / "out" / "checkpoint-1" / "scheduler.pt").write_bytes(b"y" * 64)  # same size, other bytes
    weights = case_dir / "out" / "checkpoint-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
