"""Load the base model: the embedded default, a local HF directory, a .gguf file or a hub id.

The embedded SmolLM2-135M-Instruct ships as a GGUF file; it is converted once into a cached HF
(safetensors) directory, atomically, so later loads take seconds instead of a dequantisation pass.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from newtune import embedded
from newtune.config.model import ModelConfig
from newtune.data.types import Tokenizer
from newtune.errors import ModelError
from newtune.feedback import step
from newtune.paths import looks_like_path, model_not_found, model_path_missing

log = logging.getLogger("newtune.model")


def ensure_embedded_converted() -> Path:
    """The embedded model as a cached HF directory, converted from its GGUF on first use."""
    from filelock import FileLock

    target = embedded.converted_dir()
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").exists():  # another process finished while we waited
            return target
        gguf = embedded.gguf_path()
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
        tmp.chmod(0o755)
        try:
            with step(f"converting the embedded model {gguf.name} to {target} (once)"):
                convert_gguf(gguf, tmp)
            if target.exists():  # a half-written leftover from an old layout; the lock makes this safe
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantise a GGUF file into a plain float32 HF directory (model + tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # the weights are already dequantised; save them as plain tensors
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out_dir)


def resolve_model_dir(model_cfg: ModelConfig) -> Path:
    """The local directory holding the base model (converting the embedded one if needed).

    Hub ids resolve through the local HF cache only when it already holds them.
    """
    src = model_cfg.base_model
    if embedded.is_embedded(src):
        return ensure_embedded_converted()
    if model_path_missing(src):
        raise ModelError(*model_not_found("base_model", src))
    path = Path(src).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError("base_model", f"{path} is not a file")
        return path.parent
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError("base_model", f"{path} has no config.json, so it is not a Hugging Face model directory")
        return path
    if looks_like_path(src):
        raise ModelError("base_model", f"{src} does not exist", "give a local model directory, a .gguf file or a hub id")
    return hub_snapshot(src, model_cfg.revision_of_model)


def hub_snapshot(repo_id: str, revision: str | None) -> Path:
    """A hub model from the local HF cache, or a download; offline → one ModelError saying what to do."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py"]))
    except Exception as e:  # LocalEntryNotFound, connection errors, repo not found, gated repos ...
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise ModelError(
            "base_model",
            f"'{repo_id}' is not a local path, and the model hub could not provide it ({type(e).__name__}: {first})",
            "when offline (HF_HUB_OFFLINE=1 or no connection), download the model elsewhere and set base_model "
            "to its local directory, or omit base_model to use the embedded SmolLM2-135M-Instruct",
        ) from None


def attention_kernel(model_cfg: ModelConfig) -> str:
    """attn_implementation, else sdpa; xformers runs as sdpa (the same attention, torch's memory-efficient kernel)."""
    name = model_cfg.attn_implementation or "sdpa"
    if name == "xformers":
        log.info("attn_implementation: xformers runs as sdpa (the same attention; torch picks its memory-efficient kernel)")
        return "sdpa"
    if name in ("flash_attention_2", "flash_attention_3"):
        import torch

        package = "flash_attn" if name == "flash_attention_2" else "flash_attn_interface"
        if importlib.util.find_spec(package) is None:
            raise ModelError("attn_implementation", f"{name} needs the {package} package, which is not installed",
                             "install it, or remove attn_implementation to use sdpa")
        if not torch.cuda.is_available():
            raise ModelError("attn_implementation", f"{name} needs a CUDA GPU, and none is available",
                             "remove attn_implementation (sdpa is the default)")
    return name


def load_model(model_cfg: ModelConfig, tokenizer: Tokenizer, *, dtype: Any, device: Any = None) -> Any:
    """The base model in `dtype`, on `device`, with embeddings grown to the tokenizer when it grew."""
    from transformers import AutoModelForCausalLM

    src = model_cfg.base_model
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": model_cfg.trust_remote_code,
                              "attn_implementation": attention_kernel(model_cfg)}
    if model_cfg.load_in_4bit or model_cfg.load_in_8bit:
        kwargs["quantization_config"] = bnb_config(model_cfg, dtype)
        kwargs["device_map"] = {"": device or 0}
    elif model_cfg.device_map is not None:
        kwargs["device_map"] = model_cfg.device_map
    # low_cpu_mem_usage: transformers 5 always loads without a first random init, so there is nothing to pass.
    model_dir = resolve_model_dir(model_cfg)
    gguf = Path(src).expanduser() if src and src.endswith(".gguf") else None
    if model_cfg.base_model_config or model_cfg.model_config_overrides:
        kwargs["config"] = model_config(model_cfg, model_dir, gguf)
    where = f"{gguf}" if gguf else f"{embedded.EMBEDDED_NAME} ({model_dir})" if embedded.is_embedded(src) else str(model_dir)
    try:
        with step(f"loading base model {where}"):
            if gguf is not None:
                model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, **kwargs)
                model.hf_quantizer = None
            else:
                model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    except (OSError, ValueError) as e:
        raise ModelError("base_model", f"cannot load a causal LM from {where}: {str(e).splitlines()[0]}") from None
    grow_embeddings(model, tokenizer, multiple_of=32 if model_cfg.resize_token_embeddings_to_32x else 1)
    if device is not None and "device_map" not in kwargs:
        model.to(device)
    return model


def model_config(model_cfg: ModelConfig, model_dir: Path, gguf: Path | None) -> Any:
    """The base model's config (or base_model_config's) with `model_config:` overrides applied."""
    from transformers import AutoConfig

    trust = model_cfg.trust_remote_code
    if model_cfg.base_model_config:
        config = AutoConfig.from_pretrained(model_cfg.base_model_config, trust_remote_code=trust)
    elif gguf is not None:
        config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    else:
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust)
    for key, value in (model_cfg.model_config_overrides or {}).items():
        current = getattr(config, key, None)
        if isinstance(current, dict) and isinstance(value, dict):
            value = {**current, **value}  # e.g. rope_parameters: {rope_type: ...} keeps the other entries
        setattr(config, key, value)
    return config


def grow_embeddings(model: Any, tokenizer: Tokenizer, multiple_of: int = 1) -> bool:
    """Resize the token embeddings when the tokenizer has more tokens than the model; True if resized.

    `multiple_of` 32 (resize_token_embeddings_to_32x) rounds the row count up, as axolotl does.
    """
    n = -(-len(tokenizer) // multiple_of) * multiple_of
    if n <= model.get_input_embeddings().weight.shape[0]:
        return False
    log.info("resizing token embeddings %d → %d for added tokens", model.get_input_embeddings().weight.shape[0], n)
    model.resize_token_embeddings(n, mean_resizing=True)
    return True


def bnb_config(model_cfg: ModelConfig, dtype: Any) -> Any:
    """bitsandbytes quantisation (4-bit NF4 for QLoRA, or 8-bit); needs a CUDA GPU and the package."""
    import torch

    if not torch.cuda.is_available():
        raise ModelError("load_in_4bit" if model_cfg.load_in_4bit else "load_in_8bit",
                         "QLoRA and 4/8-bit loading need a CUDA GPU (bitsandbytes), and none is available",
                         "use adapter: lora without load_in_4bit/load_in_8bit on this machine")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError("load_in_4bit", "4/8-bit loading needs the bitsandbytes package", "pip install bitsandbytes")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(**bnb_kwargs(model_cfg, dtype))


def bnb_kwargs(model_cfg: ModelConfig, dtype: Any) -> dict[str, Any]:
    """BitsAndBytesConfig arguments: newtune's QLoRA defaults (NF4, double quant), then bnb_config_kwargs."""
    import torch

    if model_cfg.load_in_8bit:
        base: dict[str, Any] = {"load_in_8bit": True}
    else:
        base = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                "bnb_4bit_compute_dtype": dtype if dtype in (torch.bfloat16, torch.float16) else torch.float32}
    return {**base, **(model_cfg.bnb_config_kwargs or {})}


def load_tokenizer_for(model_cfg: ModelConfig) -> Tokenizer:
    """The run's tokenizer, with special_tokens/tokens added (data/tokenizer.py decides how)."""
    from newtune.data.tokenizer import tokenizer_for

    return tokenizer_for(model_cfg)
