"""What a run will load from disk besides the base model, checked against the config before any data is
tokenized or any model loads: the checkpoint it resumes from and the adapter in lora_model_dir.

A mistake here would otherwise surface after tokenizing (a cache entry written for a run that never starts)
or not at all (peft takes a saved adapter's rank over the config's lora_r without a word).
"""

from __future__ import annotations

import json
from pathlib import Path

from newtune.config.adapter import AdapterConfig
from newtune.errors import NewtuneError

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
PEFT_TYPES = {"lora": "LORA", "qlora": "LORA", "prompt_tuning": "PROMPT_TUNING", "prefix_tuning": "PREFIX_TUNING",
              "p_tuning": "P_TUNING", "multitask_prompt_tuning": "MULTITASK_PROMPT_TUNING"}
# adapter_config.json field → config key, for the keys that shape the adapter's weights or their scale
SHAPE_KEYS = {"r": "lora_r", "lora_alpha": "lora_alpha", "target_modules": "lora_target_modules",
              "use_dora": "peft_use_dora", "use_rslora": "peft_use_rslora", "num_virtual_tokens": "peft_num_virtual_tokens"}


def check(a: AdapterConfig, resume: Path | None) -> None:
    """Refuse, before anything loads, a lora_model_dir or resume checkpoint that this config cannot use."""
    if a.lora_model_dir:
        check_lora_model_dir(a)
    if resume is not None:
        check_resume(a, resume)


def read_adapter_config(path: Path, key: str) -> dict:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise NewtuneError(key, f"{path} is unreadable ({e.__class__.__name__}: {e})",
                           "point it at a directory saved by newtune or peft (save_pretrained)") from None
    if not isinstance(saved, dict):
        raise NewtuneError(key, f"{path} does not hold an adapter config (a JSON object)")
    return saved


def differences(saved: dict, a: AdapterConfig, holder: str) -> list[str]:
    """The adapter keys this config sets that disagree with the saved adapter_config.json."""
    out = []
    kind = PEFT_TYPES.get(a.adapter or "")
    if kind and saved.get("peft_type") and str(saved["peft_type"]).upper() != kind:
        out.append(f"adapter {str(saved['peft_type']).lower()} in the {holder}, {a.adapter} in this run")
    for field, key in SHAPE_KEYS.items():
        if key not in a.model_fields_set or field not in saved:
            continue
        mine, theirs = getattr(a, key), saved[field]
        if field == "target_modules":
            if isinstance(mine, str) or isinstance(theirs, str) or a.lora_target_linear:
                continue  # a regex or lora_target_linear: names known only once the model is loaded
            mine, theirs = sorted(mine or []), sorted(theirs or [])
        if mine != theirs:
            out.append(f"{key} {json.dumps(theirs)} in the {holder}, {json.dumps(mine)} in this run")
    return out


def check_lora_model_dir(a: AdapterConfig) -> None:
    d = Path(a.lora_model_dir).expanduser()
    if a.adapter is None:
        raise NewtuneError("lora_model_dir", f"{d} is set but `adapter` is not: this run is a full fine-tune and "
                           "would not use it", "set adapter: to the saved adapter's kind (e.g. lora), or remove lora_model_dir")
    if not d.is_dir():
        raise NewtuneError("lora_model_dir", f"{d} does not exist" if not d.exists() else f"{d} is a file, not a directory",
                           "point it at the directory an earlier run saved its adapter in (its output_dir)")
    if not (d / "adapter_config.json").is_file():
        what = "a full model (config.json), not an adapter" if (d / "config.json").is_file() else "no saved adapter"
        raise NewtuneError("lora_model_dir", f"{d} holds {what} (adapter_config.json is missing)",
                           "point it at an adapter's directory; to start from a full model, set base_model instead")
    saved = read_adapter_config(d / "adapter_config.json", "lora_model_dir")
    weights = next((d / f for f in WEIGHT_FILES if (d / f).is_file()), None)
    if weights is None:
        raise NewtuneError("lora_model_dir", f"{d} has adapter_config.json but no adapter weights ({' or '.join(WEIGHT_FILES)})",
                           "copy the whole adapter directory again")
    if weights.suffix == ".safetensors":
        problem = safetensors_problem(weights)
        if problem:
            raise NewtuneError("lora_model_dir", f"{weights} cannot be read: {problem}",
                               "the file is damaged or was not copied completely; copy the adapter again")
    diffs = differences(saved, a, "adapter")
    if diffs:
        raise NewtuneError("lora_model_dir", f"{d} holds another adapter than this config asks for: " + "; ".join(diffs),
                           "set these keys as saved (or remove them from the config): training continues the saved adapter")


def safetensors_problem(path: Path) -> str | None:
    """Why the file's header or size is not a whole safetensors file (reads the header only); None if fine."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            f.keys()
    except Exception as e:  # the library's own words (truncated, not a safetensors file)
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None


def check_resume(a: AdapterConfig, path: Path) -> None:
    """A checkpoint holds the kind of weights this run trains (sharded checkpoints are checked when loaded)."""
    from newtune.train.checkpoint import SHARDED_DIR

    if (path / SHARDED_DIR).is_dir():
        return
    saved_adapter = (path / "adapter_config.json").is_file()
    if saved_adapter and a.adapter is None:
        raise NewtuneError("resume_from_checkpoint", f"{path} holds an adapter (adapter_config.json) but this run "
                           "is a full fine-tune (no adapter set)",
                           "set the adapter keys the checkpoint was trained with, or use another output_dir")
    if not saved_adapter and a.adapter is not None and (path / "model.safetensors").is_file():
        raise NewtuneError("resume_from_checkpoint", f"{path} holds full model weights but this run trains an adapter",
                           "remove `adapter` to resume this full fine-tune, or use another output_dir")
    if saved_adapter:
        diffs = differences(read_adapter_config(path / "adapter_config.json", "resume_from_checkpoint"), a, "checkpoint")
        if diffs:
            raise NewtuneError("resume_from_checkpoint", f"{path} was trained with another adapter: " + "; ".join(diffs),
                               "resume with the checkpoint's adapter settings, or use another output_dir")
