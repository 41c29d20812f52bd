"""cfg.adapter → a peft model: LoRA (rsLoRA, DoRA, QLoRA) or a soft prompt; None trains everything."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from newtune.config.adapter import AdapterConfig
from newtune.data.types import Tokenizer
from newtune.errors import ModelError

log = logging.getLogger("newtune.model")


def apply_adapter(model: Any, adapter_cfg: AdapterConfig, tokenizer: Tokenizer, *, added_tokens: bool = False) -> Any:
    """Wrap `model` as `adapter_cfg` says and leave exactly the parameters to train with requires_grad.

    `added_tokens`: the tokenizer grew, so the embeddings must be trained too (added to modules_to_save).
    """
    kind = adapter_cfg.adapter
    if kind is None:
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if kind == "qlora":
        check_qlora_possible(model)
    if adapter_cfg.lora_model_dir:
        return continue_adapter(model, adapter_cfg)
    from peft import get_peft_model

    if kind in ("lora", "qlora"):
        if kind == "qlora":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        peft_cfg = lora_config(model, adapter_cfg, added_tokens)
    else:
        peft_cfg = soft_prompt_config(model, adapter_cfg, tokenizer)
        if added_tokens:
            log.warning("%s trains only the virtual tokens: the embeddings of added tokens stay untrained", kind)
    with warnings.catch_warnings():  # peft 0.21 calls transformers' deprecated is_gradient_checkpointing
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()  # so gradient checkpointing sees a grad path from the inputs
        return get_peft_model(model, peft_cfg)


def check_qlora_possible(model: Any) -> None:
    import torch

    if not torch.cuda.is_available():
        raise ModelError("adapter", "QLoRA needs a CUDA GPU (bitsandbytes 4-bit), and none is available",
                         "use adapter: lora (without load_in_4bit) on this machine")
    if not getattr(model, "is_loaded_in_4bit", False):
        raise ModelError("adapter", "adapter: qlora needs the base model loaded in 4 bit", "set load_in_4bit: true")


def embedding_names(model: Any) -> tuple[str | None, str | None]:
    """Module names of the input embedding and of the LM head (e.g. 'embed_tokens', 'lm_head')."""
    found: dict[int, str] = {id(m): n for n, m in model.named_modules()}
    inp = found.get(id(model.get_input_embeddings()))
    out_mod = model.get_output_embeddings()
    out = found.get(id(out_mod)) if out_mod is not None else None
    return (inp.rsplit(".", 1)[-1] if inp else None), (out.rsplit(".", 1)[-1] if out else None)


def linear_module_names(model: Any) -> list[str]:
    """Short names of every linear layer but the LM head (what lora_target_linear adapts)."""
    import torch

    _, head = embedding_names(model)
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or "Linear" in type(module).__name__:
            short = name.rsplit(".", 1)[-1]
            if short and short != head:
                names.add(short)
    return sorted(names)


def lora_config(model: Any, a: AdapterConfig, added_tokens: bool) -> Any:
    from peft import LoraConfig, TaskType

    targets: list[str] | str
    if isinstance(a.lora_target_modules, str):
        targets = a.lora_target_modules  # a regex, passed to peft as is
        if a.lora_target_linear:
            raise ModelError("lora_target_modules", "a regex target cannot be combined with lora_target_linear",
                             "give a list of module names, or drop one of the two keys")
    else:
        targets = list(a.lora_target_modules or [])
        if a.lora_target_linear:
            targets = sorted(set(targets) | set(linear_module_names(model)))
    if targets or not a.lora_target_parameters:
        check_targets_exist(model, targets)
    params = [a.lora_target_parameters] if isinstance(a.lora_target_parameters, str) else a.lora_target_parameters
    to_save = list(a.lora_modules_to_save or [])
    if added_tokens:
        missing = [n for n in embedding_names(model) if n and n not in to_save]
        if missing:
            log.warning("added tokens: training %s in full (modules_to_save) so the new embeddings learn", missing)
            to_save += missing
    log.info("LoRA r=%d alpha=%s on %s%s", a.lora_r, a.lora_alpha, targets, f" and parameters {params}" if params else "")
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM, r=a.lora_r, lora_alpha=a.lora_alpha, lora_dropout=a.lora_dropout,
        target_modules=targets, target_parameters=params or None, modules_to_save=to_save or None, fan_in_fan_out=a.lora_fan_in_fan_out,
        use_rslora=a.peft_use_rslora, use_dora=a.peft_use_dora, bias="none",
        # tied input/output embeddings stay one matrix when either is trained in full
        ensure_weight_tying=bool(to_save) and bool(getattr(model.config, "tie_word_embeddings", False)),
    )


def check_targets_exist(model: Any, targets: list[str] | str) -> None:
    if isinstance(targets, str):
        return
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    unknown = [t for t in targets if t not in present]
    if unknown:
        some = ", ".join(linear_module_names(model)[:12])
        raise ModelError("lora_target_modules", f"the model has no module named {', '.join(unknown)}",
                         f"its linear layers are: {some}; or set lora_target_linear: true")


def soft_prompt_config(model: Any, a: AdapterConfig, tokenizer: Tokenizer) -> Any:
    from peft import (
        PrefixTuningConfig,
        PromptEncoderConfig,
        PromptEncoderReparameterizationType,
        PromptTuningConfig,
        PromptTuningInit,
        TaskType,
    )

    common = {"task_type": TaskType.CAUSAL_LM, "num_virtual_tokens": a.peft_num_virtual_tokens}
    if a.adapter == "multitask_prompt_tuning":
        return multitask_config(a, tokenizer, common)
    if a.adapter == "prompt_tuning":
        if a.peft_prompt_tuning_init == "text":
            return PromptTuningConfig(**common, prompt_tuning_init=PromptTuningInit.TEXT,
                                      prompt_tuning_init_text=a.peft_prompt_tuning_init_text,
                                      tokenizer_name_or_path=tokenizer_source(tokenizer))
        return PromptTuningConfig(**common, prompt_tuning_init=PromptTuningInit.RANDOM)
    hidden = a.peft_encoder_hidden_size or model.config.hidden_size
    if a.adapter == "prefix_tuning":
        return PrefixTuningConfig(**common, prefix_projection=a.peft_prefix_projection, encoder_hidden_size=hidden)
    reparam = PromptEncoderReparameterizationType(a.peft_encoder_reparameterization_type)
    return PromptEncoderConfig(**common, encoder_reparameterization_type=reparam, encoder_hidden_size=hidden,
                               encoder_num_layers=a.peft_encoder_num_layers, encoder_dropout=a.peft_encoder_dropout)


def multitask_config(a: AdapterConfig, tokenizer: Tokenizer, common: dict) -> Any:
    """peft's multitask prompt tuning: a shared prompt times a rank-`peft_num_ranks` matrix per task."""
    from peft import MultitaskPromptTuningConfig, MultitaskPromptTuningInit

    init = MultitaskPromptTuningInit(a.peft_prompt_tuning_init.upper())
    extra: dict[str, Any] = {}
    if init == MultitaskPromptTuningInit.TEXT:
        extra = {"prompt_tuning_init_text": a.peft_prompt_tuning_init_text, "tokenizer_name_or_path": tokenizer_source(tokenizer)}
    elif init != MultitaskPromptTuningInit.RANDOM:
        extra = {"prompt_tuning_init_state_dict_path": str(source_prompt_file(a)),
                 "prompt_tuning_init_task": a.peft_prompt_tuning_init_task}
    return MultitaskPromptTuningConfig(**common, prompt_tuning_init=init, num_tasks=a.peft_num_tasks,
                                       num_ranks=a.peft_num_ranks, **extra)


def source_prompt_file(a: AdapterConfig) -> Path:
    """The weights file of the trained multitask prompt named by peft_prompt_tuning_init_dir, checked."""
    import json

    from safetensors import safe_open

    given = Path(str(a.peft_prompt_tuning_init_dir)).expanduser()
    weights = given / "adapter_model.safetensors" if given.is_dir() else given
    if not weights.is_file():
        raise ModelError("peft_prompt_tuning_init_dir", f"{given} holds no trained prompt (adapter_model.safetensors is missing)",
                         "give the output_dir of a multitask_prompt_tuning run")
    conf = weights.parent / "adapter_config.json"
    peft_type = json.loads(conf.read_text()).get("peft_type") if conf.is_file() else None
    with safe_open(str(weights), "pt") as f:
        keys = set(f.keys())
    if peft_type not in (None, "MULTITASK_PROMPT_TUNING") or "prompt_embeddings" not in keys:
        raise ModelError("peft_prompt_tuning_init_dir", f"{given} holds a {peft_type or 'different'} adapter, not a trained multitask prompt",
                         "give the output_dir of a multitask_prompt_tuning run")
    with safe_open(str(weights), "pt") as f:
        n_virtual = f.get_slice("prompt_embeddings").get_shape()[0]
        n_tasks, _, n_ranks = f.get_slice("prefix_task_cols").get_shape() if "prefix_task_cols" in keys else (None, 0, None)
    if n_virtual != a.peft_num_virtual_tokens:
        raise ModelError("peft_num_virtual_tokens", f"the source prompt in {given} has {n_virtual} virtual tokens, "
                         f"this run {a.peft_num_virtual_tokens}", f"set peft_num_virtual_tokens: {n_virtual}")
    if a.peft_prompt_tuning_init != "only_source_shared" and n_ranks is not None and n_ranks != a.peft_num_ranks:
        raise ModelError("peft_num_ranks", f"the source prompt in {given} has rank {n_ranks}, this run {a.peft_num_ranks}",
                         f"set peft_num_ranks: {n_ranks}, or peft_prompt_tuning_init: only_source_shared")
    if a.peft_prompt_tuning_init == "exact_source_task" and n_tasks is not None and a.peft_prompt_tuning_init_task >= n_tasks:
        raise ModelError("peft_prompt_tuning_init_task", f"the source prompt in {given} has {n_tasks} tasks; "
                         f"task {a.peft_prompt_tuning_init_task} is not one of them", f"choose a task from 0 to {n_tasks - 1}")
    return weights


def tokenizer_source(tokenizer: Tokenizer) -> str:
    """peft re-loads the tokenizer by name to embed the init text; save ours where it can find it."""
    import tempfile

    name = getattr(tokenizer, "name_or_path", "")
    if name and Path(name).is_dir():
        return name
    d = tempfile.mkdtemp(prefix="newtune-tok-")
    tokenizer.save_pretrained(d)
    return d


def continue_adapter(model: Any, a: AdapterConfig) -> Any:
    """Load the adapter saved in lora_model_dir, trainable, to continue training it."""
    from peft import PeftModel

    d = Path(a.lora_model_dir).expanduser()
    if not (d / "adapter_config.json").exists():
        raise ModelError("lora_model_dir", f"{d} holds no saved adapter (adapter_config.json is missing)")
    log.info("continuing from the adapter in %s", d)
    return PeftModel.from_pretrained(model, d, is_trainable=True)
