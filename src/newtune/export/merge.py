"""`newtune merge-lora`: fold the LoRA adapter in output_dir into the base model; a plain HF directory."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newtune.config.run import RunConfig
from newtune.errors import ModelError
from newtune.export.artifacts import CONFIG_FILE, PROMPT_FORMAT_FILE, trained_tokenizer

if TYPE_CHECKING:
    from rich.console import Console


def run_merge(cfg: RunConfig, console: Console, out_dir: Path | None) -> Path:
    """Write base + adapter merged to out_dir (default output_dir/merged), atomically; returns it."""
    from peft import PeftModel

    from newtune.model.load import load_model

    trained = Path(cfg.train.output_dir)
    check_adapter(trained)
    target = Path(out_dir) if out_dir is not None else trained / "merged"
    tokenizer = trained_tokenizer(trained, cfg)
    # QLoRA trained against 4-bit weights; the merge goes into the full-precision base
    model_cfg = cfg.model.model_copy(update={"load_in_4bit": False, "load_in_8bit": False})
    base = load_model(model_cfg, tokenizer, dtype=merge_dtype(cfg))
    console.print(f"merging the adapter in {trained} into {cfg.model.base_model or 'the embedded SmolLM2-135M-Instruct'}")
    merged = PeftModel.from_pretrained(base, trained).merge_and_unload()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-merge-", dir=target.parent))
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name in (CONFIG_FILE, PROMPT_FORMAT_FILE):
            if (trained / name).exists():
                shutil.copy2(trained / name, tmp / name)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    console.print(f"[green]✓[/green] merged model written to {target}")
    return target


def check_adapter(trained: Path) -> None:
    """output_dir must hold a LoRA adapter; soft prompts and full fine-tunes have nothing to merge."""
    config = trained / "adapter_config.json"
    if not config.exists():
        if (trained / "config.json").exists():
            raise ModelError("output_dir", f"{trained} holds a fully fine-tuned model, not an adapter; there is nothing to merge",
                             "load that directory directly with transformers")
        raise ModelError("output_dir", f"{trained} holds no adapter (adapter_config.json is missing)",
                         "run `newtune train CONFIG` with adapter: lora first")
    peft_type = json.loads(config.read_text()).get("peft_type")
    if peft_type != "LORA":
        raise ModelError("adapter", f"a {peft_type} adapter cannot be merged into the weights; only LoRA can",
                         "load it with `newtune inference` instead")


def merge_dtype(cfg: RunConfig) -> Any:
    """Merge in float32 unless the run trained in bf16/fp16 (then keep that size on disk)."""
    import torch

    if cfg.train.bf16 is True:
        return torch.bfloat16
    if cfg.train.fp16:
        return torch.float16
    return torch.float32

