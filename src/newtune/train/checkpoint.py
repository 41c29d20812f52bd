"""Checkpoints: model/adapter weights, optimizer, scheduler, RNG states and the data position.

Each checkpoint is written into a hidden temp directory, finished with a marker file written last,
then renamed to `checkpoint-<step>`. A crash or a full disk can leave only a `.tmp-*` directory,
which is never taken for a checkpoint and is removed at the next start.

The marker records each file's size and sha256; a checkpoint is used only once its files match (a file
truncated or changed on disk afterwards is caught before any weight is loaded). Auto-resume falls back from
a damaged newest checkpoint to the newest intact one, saying which and why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from newtune.config.train import TrainConfig
from newtune.errors import NewtuneError

PREFIX = "checkpoint-"
MARKER = "newtune_checkpoint.json"  # written last: a checkpoint without it is incomplete
TMP_PREFIX = ".tmp-checkpoint-"
DEFAULT_TOTAL_LIMIT = 4  # save_total_limit unset: keep 4 checkpoints, as axolotl does
SHARDED_DIR = "accelerate_state"  # FSDP / DeepSpeed: model and optimizer shards, written by accelerate
log = logging.getLogger(__name__)


def sharded(accelerator: Any) -> bool:
    """Whether parameters and optimizer state are split across ranks, so only accelerate can save them."""
    from accelerate.utils import DistributedType

    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


@dataclass
class TrainState:
    """Where the run is: enough to continue exactly as if it had never stopped."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # epoch of the next micro-batch
    batch_in_epoch: int = 0  # micro-batches of this epoch already used (all ranks together)
    tokens: int = 0  # trained (label) tokens so far
    real_tokens: int = 0  # non-pad input tokens so far
    fed_tokens: int = 0  # input tokens fed to the model so far, padding included (include_tkps, include_tokens_per_second)
    seconds: float = 0.0  # training time before this process started


def is_complete(path: Path) -> bool:
    return path.is_dir() and (path / MARKER).is_file()


def checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints in output_dir, oldest first."""
    if not output_dir.is_dir():
        return []
    found = [p for p in output_dir.glob(PREFIX + "*") if p.name[len(PREFIX):].isdigit() and is_complete(p)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(root: Path) -> dict[str, dict]:
    """{relative path: {size, sha256}} of every file under root but the marker."""
    return {f.relative_to(root).as_posix(): {"size": f.stat().st_size, "sha256": sha256_file(f)}
            for f in sorted(root.rglob("*")) if f.is_file() and f.name != MARKER}


def damage(path: Path) -> str | None:
    """What is wrong with a complete checkpoint's files against the manifest in its marker; None if intact.

    Sizes first (cheap: a truncated file), then contents. A marker without a manifest (written before
    manifests existed) has nothing to check against and counts as intact.
    """
    try:
        files = json.loads((path / MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError) as e:
        return f"{MARKER} is unreadable ({e})"
    if files is None:
        return None
    for rel, rec in files.items():
        f = path / rel
        if not f.is_file():
            return f"{rel} is missing"
        if f.stat().st_size != rec["size"]:
            return f"{rel} has {f.stat().st_size} bytes where {rec['size']} were saved (truncated or overwritten)"
    for rel, rec in files.items():
        if sha256_file(path / rel) != rec["sha256"]:
            return f"{rel} differs from what was saved (its sha256 does not match)"
    return None


def resume_path(t: TrainConfig, main: bool = True) -> Path | None:
    """The checkpoint to resume from: resume_from_checkpoint, else the newest intact one when auto-resuming.

    `main`: this process warns about damaged checkpoints it skips (the others skip them quietly).
    """
    if t.resume_from_checkpoint:
        path = Path(t.resume_from_checkpoint).expanduser()
        if not path.is_dir():
            raise NewtuneError("resume_from_checkpoint", f"{path} does not exist")
        if not is_complete(path):
            raise NewtuneError("resume_from_checkpoint", f"{path} is not a complete newtune checkpoint ({MARKER} is missing)",
                               "it was interrupted while saving; resume from an earlier checkpoint")
        problem = damage(path)
        if problem:
            raise NewtuneError("resume_from_checkpoint", f"{path} is damaged: {problem}",
                               "resume from an earlier checkpoint, or delete this one")
        refuse_model_only(path, "resume_from_checkpoint")
        return path
    if t.auto_resume_from_checkpoints:
        found = checkpoints(Path(t.output_dir))
        damaged = []
        for path in reversed(found):
            problem = damage(path)
            if problem is None:
                if damaged and main:
                    log.warning("resuming from %s instead: %s", path.name, "; ".join(damaged))
                refuse_model_only(path, "auto_resume_from_checkpoints")
                return path
            damaged.append(f"{path} is damaged ({problem})")
        if damaged:
            raise NewtuneError("auto_resume_from_checkpoints", "no intact checkpoint to resume from: "
                               + "; ".join(damaged),
                               f"delete the damaged checkpoints in {t.output_dir} to start over, or set "
                               "auto_resume_from_checkpoints: false and choose another output_dir")
        return None
    return None


def refuse_model_only(path: Path, key: str) -> None:
    """A save_only_model checkpoint has no optimizer, scheduler or random states: resuming could not be exact."""
    if json.loads((path / MARKER).read_text()).get("model_only"):
        weights = "lora_model_dir" if (path / "adapter_config.json").exists() else "base_model"
        raise NewtuneError(key, f"{path} was saved with save_only_model: it holds the weights but no optimizer, "
                           "scheduler or random states, so training cannot resume from it",
                           f"start a new run from its weights ({weights}: {path}), or use another output_dir")


def remove_partial(output_dir: Path) -> None:
    """Delete temp directories left by a save that was killed or failed."""
    for p in output_dir.glob(TMP_PREFIX + "*") if output_dir.is_dir() else []:
        shutil.rmtree(p, ignore_errors=True)


def rng_states() -> dict:
    import numpy as np
    import torch

    out = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(states: dict) -> None:
    import numpy as np
    import torch

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(output_dir: Path, state: TrainState, *, accelerator: Any, model: Any, optimizer: Any,
                    scheduler: Any, write_extras: Callable[[Path], None] | None = None, model_only: bool = False) -> Path:
    """Write checkpoint-<state.step> atomically; every rank must call this (state dicts are collective).

    model_only (save_only_model): the weights and artifacts without the optimizer, scheduler, scaler and random
    states, as the HF Trainer saves them; the marker says so and such a checkpoint is never resumed from."""
    import torch

    final = output_dir / f"{PREFIX}{state.step}"
    tmp = output_dir / f"{TMP_PREFIX}{state.step}"
    main = accelerator.is_main_process
    # Sharded runs write shards only (no gathering of the whole model at each save); `merge-sharded` or the end
    # of the run consolidates them. Unsharded: the state dict (a collective under DDP) of the full model.
    state_dict = None if sharded(accelerator) else accelerator.get_state_dict(model)
    try:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        if not model_only:
            torch.save(rng_states(), tmp / f"rng_state_{accelerator.process_index}.pth")
        if sharded(accelerator):  # every rank writes its shards (FSDP2: torch.distributed.checkpoint)
            accelerator.save_state(str(tmp / SHARDED_DIR))
        if main:
            if state_dict is not None:
                accelerator.unwrap_model(model).save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
            if not model_only:
                save_training_state(tmp, accelerator, optimizer, scheduler)
            if write_extras is not None:
                write_extras(tmp)
        accelerator.wait_for_everyone()  # every rank's files are written before the manifest lists them
        if main:
            write_marker(tmp, state, accelerator.num_processes, model_only)
        accelerator.wait_for_everyone()
        if main:
            replace_dir(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = checkpoints(output_dir)
        raise NewtuneError("output_dir", f"could not write checkpoint {final.name}: {e}",
                           f"free disk space in {output_dir}; " + (f"{kept[-1]} is intact, resume from it"
                                                                    if kept else "no earlier checkpoint exists")) from None
    return final


def save_training_state(tmp: Path, accelerator: Any, optimizer: Any, scheduler: Any) -> None:
    """What resuming needs besides the weights: optimizer (unsharded runs), scheduler and loss scaler."""
    import torch

    if not sharded(accelerator):
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    if accelerator.scaler is not None:
        torch.save(accelerator.scaler.state_dict(), tmp / "scaler.pt")


def write_marker(tmp: Path, state: TrainState, world_size: int, model_only: bool = False) -> None:
    """The marker with the files' manifest, fsynced after everything else, so its presence means the rest is
    on disk, and each file can be checked against it before use."""
    for f in tmp.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    extra = {"model_only": True} if model_only else {}
    data = json.dumps({**asdict(state), "world_size": world_size, **extra, "files": manifest(tmp)}, indent=2)
    with open(tmp / MARKER, "w") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def replace_dir(tmp: Path, final: Path) -> None:
    """Rename tmp to final; an older directory of the same name is moved aside first, then removed."""
    old = final.with_name(TMP_PREFIX + final.name + ".old")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def prune(output_dir: Path, limit: int | None) -> list[Path]:
    """Keep the newest `limit` complete checkpoints; return the ones removed."""
    if not limit:
        return []
    old = checkpoints(output_dir)[:-limit]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return old


def load_checkpoint(path: Path, *, accelerator: Any, model: Any, optimizer: Any, scheduler: Any) -> TrainState:
    """Restore weights, optimizer, scheduler, scaler and this rank's RNG states; return the position."""
    import torch

    from newtune.train import sharded as dcp

    meta = json.loads((path / MARKER).read_text())
    meta.pop("files", None)
    meta.pop("model_only", None)  # never true here: resume_path refuses such checkpoints
    saved_world = meta.pop("world_size")
    if (path / SHARDED_DIR).is_dir() and sharded(accelerator):
        accelerator.load_state(str(path / SHARDED_DIR))  # model and optimizer shards, resharded to this world
    elif (path / SHARDED_DIR).is_dir():
        dcp.load_unsharded(path / SHARDED_DIR, accelerator.unwrap_model(model), optimizer)  # N ranks → 1
    elif saved_world != accelerator.num_processes:
        raise NewtuneError("resume_from_checkpoint", f"{path} was written by {saved_world} processes, this run has "
                           f"{accelerator.num_processes}", "resume with the same number of processes (a run with "
                           "fsdp_config saves shards that resume on any number)")
    else:
        load_weights(accelerator.unwrap_model(model), path)
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    if accelerator.scaler is not None and (path / "scaler.pt").exists():
        accelerator.scaler.load_state_dict(torch.load(path / "scaler.pt", weights_only=False))
    rng = path / f"rng_state_{accelerator.process_index}.pth"
    if rng.exists():  # a rank the saving run did not have starts from the seed's state
        set_rng_states(torch.load(rng, weights_only=False))
    return TrainState(**meta)


SOFT_PROMPT_KEYS = ("prompt_embeddings", "prefix_task_cols", "prefix_task_rows")


def load_weights(model: Any, path: Path) -> None:
    """Load the adapter (peft) or the full model weights saved by save_pretrained into `model`."""
    from safetensors.torch import load_file

    check_same_kind(model, path)
    if (path / "adapter_config.json").exists():
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(model, load_file(path / "adapter_model.safetensors"))
        # Soft prompts: peft loads prompt_embeddings (and a multitask prompt's task matrices) into the prompt
        # encoder itself, then reports the keys unused.
        unexpected = [k for k in result.unexpected_keys if k not in SOFT_PROMPT_KEYS]
        if unexpected:
            raise NewtuneError("resume_from_checkpoint", f"{path}: the adapter does not fit this model "
                               f"(unexpected: {', '.join(unexpected[:3])})")
        return
    files = sorted(path.glob("model*.safetensors"))
    if not files:
        raise NewtuneError("resume_from_checkpoint", f"{path} holds neither an adapter nor model weights")
    for f in files:
        result = model.load_state_dict(load_file(f), strict=False)
        if result.unexpected_keys:
            raise NewtuneError("resume_from_checkpoint", f"{path}: the weights do not fit this model "
                               f"(unexpected: {', '.join(result.unexpected_keys[:3])})")


# peft's adapter_config.json field → the config key that sets it
ADAPTER_KEYS = {"peft_type": "adapter", "r": "lora_r", "lora_alpha": "lora_alpha", "target_modules": "lora_target_modules",
                "use_dora": "peft_use_dora", "use_rslora": "peft_use_rslora", "num_virtual_tokens": "peft_num_virtual_tokens",
                "modules_to_save": "lora_modules_to_save"}


def check_same_kind(model: Any, path: Path) -> None:
    """The checkpoint holds what this run trains: an adapter of the same shape, or full weights."""
    saved_adapter = (path / "adapter_config.json").exists()
    peft_cfg = getattr(model, "peft_config", None)
    if saved_adapter and not peft_cfg:
        raise NewtuneError("resume_from_checkpoint", f"{path} holds an adapter (adapter_config.json) but this run "
                           "is a full fine-tune (no adapter set)",
                           "set the adapter keys the checkpoint was trained with, or use another output_dir")
    if not saved_adapter and peft_cfg:
        raise NewtuneError("resume_from_checkpoint", f"{path} holds full model weights but this run trains an adapter",
                           "remove `adapter` to resume this full fine-tune, or use another output_dir")
    if not saved_adapter:
        return
    try:
        saved = json.loads((path / "adapter_config.json").read_text())
    except (OSError, ValueError) as e:
        raise NewtuneError("resume_from_checkpoint", f"{path / 'adapter_config.json'} is unreadable: {e}") from None
    current = next(iter(peft_cfg.values())).to_dict()
    diffs = []
    for field, key in ADAPTER_KEYS.items():
        a, b = saved.get(field), current.get(field)
        a, b = (sorted(a) if isinstance(a, list | set | tuple) else a), (sorted(b) if isinstance(b, list | set | tuple) else b)
        if field in saved and a != b and not (a in (None, []) and b in (None, [])):
            diffs.append(f"{key} {_shown(a)} in the checkpoint, {_shown(b)} in this run")
    if diffs:
        raise NewtuneError("resume_from_checkpoint", f"{path} was trained with another adapter: " + "; ".join(diffs),
                           "resume with the checkpoint's adapter settings, or use another output_dir")


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value.lower()
    return json.dumps(value) if isinstance(value, list | dict) else str(value)
