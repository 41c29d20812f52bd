"""A LoRA run's output_dir, made without training: tiny base + adapter with non-zero weights + artifacts.

Imported by the export tests (a conftest here would shadow tests/conftest.py for `from conftest import`)."""

from __future__ import annotations

from pathlib import Path

from newtune.load import load_config


def make_cfg(base_dir: Path, out: Path, **keys):
    raw = {"base_model": str(base_dir), "adapter": "lora", "lora_target_linear": True, "lora_r": 4,
           "datasets": [{"path": "data.jsonl", "type": "alpaca"}], "output_dir": str(out), **keys}
    return load_config(None, raw=raw)


def write_adapter(cfg, tokenizer, seed: int = 1):
    """Save a LoRA adapter whose B matrices are random (so it changes the output) and the artifacts."""
    import torch
    from peft import get_peft_model

    from newtune.export.artifacts import save_artifacts
    from newtune.model.adapters import lora_config
    from newtune.model.load import load_model

    base = load_model(cfg.model, tokenizer, dtype=torch.float32)
    peft = get_peft_model(base, lora_config(base, cfg.adapter, added_tokens=False))
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft.save_pretrained(cfg.train.output_dir)
    save_artifacts(cfg.train.output_dir, cfg, tokenizer)
    return peft


def make_lora_run(tmp_path: Path, base_dir: Path, tokenizer):
    """(config, the peft model) of an alpaca LoRA run whose output_dir is tmp_path/out."""
    cfg = make_cfg(base_dir, tmp_path / "out")
    return cfg, write_adapter(cfg, tokenizer)
