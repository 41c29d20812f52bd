"""Sharded (FSDP2, torch.distributed.checkpoint) checkpoints read by one process: resume N → 1, `merge-sharded`.

accelerate's `save_state` writes `pytorch_model_fsdp_0/` and `optimizer_0/` as DCP directories keyed by the
model's parameter names, which FSDP2 leaves unchanged; DCP reads them into an unsharded model in one process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newtune.errors import NewtuneError

if TYPE_CHECKING:
    from rich.console import Console

MODEL_DIR = "pytorch_model_fsdp_0"
OPTIMIZER_DIR = "optimizer_0"


def load_unsharded(state_dir: Path, model: Any, optimizer: Any | None) -> None:
    """Load the DCP model (and optimizer) shards in state_dir into a model and optimizer of this one process."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    if not (state_dir / MODEL_DIR).is_dir():
        raise NewtuneError(str(state_dir), "holds no FSDP model shards (pytorch_model_fsdp_0/)",
                           "it was written by another engine (DeepSpeed resumes on the same number of processes)")
    state = {"model": get_model_state_dict(model)}
    dcp.load(state, checkpoint_id=str(state_dir / MODEL_DIR), no_dist=True)
    set_model_state_dict(model, state["model"])
    if optimizer is not None:
        optim = {"optimizer": get_optimizer_state_dict(model, optimizer)}
        dcp.load(optim, checkpoint_id=str(state_dir / OPTIMIZER_DIR), no_dist=True)
        set_optimizer_state_dict(model, optimizer, optim["optimizer"])


def saved_batching(checkpoint: Path) -> tuple[int, int]:
    """(gradient_accumulation_steps, processes) of the run that wrote the checkpoint."""
    import yaml

    world = json.loads((checkpoint / "newtune_checkpoint.json").read_text()).get("world_size", 1)
    config = checkpoint / "newtune.yml"
    accumulation = yaml.safe_load(config.read_text()).get("gradient_accumulation_steps", 1) if config.is_file() else 1
    return int(accumulation), int(world)


def run_merge(output_dir: Path, console: Console, *, checkpoint: Path | None = None, out: Path | None = None) -> Path:
    """Consolidate a sharded checkpoint (default: the newest complete one) into a normal HF directory."""
    from newtune.config.load import load_config
    from newtune.data.tokenizer import tokenizer_for
    from newtune.export.artifacts import save_artifacts
    from newtune.model.adapters import apply_adapter
    from newtune.model.load import load_model
    from newtune.train import checkpoint as ckpt

    if checkpoint is None:
        found = [p for p in ckpt.checkpoints(output_dir) if (p / ckpt.SHARDED_DIR).is_dir()]
        if not found:
            raise NewtuneError(str(output_dir), "holds no complete sharded checkpoint (checkpoint-N/accelerate_state)",
                               "give the run's output_dir; checkpoints without newtune_checkpoint.json are incomplete")
        checkpoint = found[-1]
    elif not ckpt.is_complete(checkpoint) or not (checkpoint / ckpt.SHARDED_DIR).is_dir():
        raise NewtuneError(str(checkpoint), "is not a complete sharded newtune checkpoint")
    cfg = load_config(checkpoint / "newtune.yml")
    tokenizer = tokenizer_for(cfg.model)
    import torch

    model = load_model(cfg.model, tokenizer, dtype=torch.float32)  # the shards hold fp32 master weights
    added = bool(cfg.model.tokens or (cfg.model.special_tokens and cfg.model.special_tokens.additional_special_tokens))
    model = apply_adapter(model, cfg.adapter, tokenizer, added_tokens=added)
    load_unsharded(checkpoint / ckpt.SHARDED_DIR, model, None)
    import os
    import shutil

    target = out or output_dir
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / ".tmp-merge"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    save_artifacts(tmp, cfg, tokenizer)
    for f in tmp.iterdir():  # whole files only: nothing half-written among the outputs
        os.replace(f, target / f.name)
    tmp.rmdir()
    console.print(f"merged {checkpoint} → {target}")
    return target
