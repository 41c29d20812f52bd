"""RunConfig: the four topic sections plus the checks that span them. Frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from newtune.config.adapter import SOFT_PROMPTS, AdapterConfig
from newtune.config.data import DataConfig
from newtune.config.model import ModelConfig
from newtune.config.train import TrainConfig

SECTIONS: dict[str, type[BaseModel]] = {
    "model": ModelConfig,
    "data": DataConfig,
    "adapter": AdapterConfig,
    "train": TrainConfig,
}


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelConfig
    data: DataConfig
    adapter: AdapterConfig
    train: TrainConfig

    def flat(self) -> dict:
        """The resolved config as flat axolotl-style YAML keys (defaults filled in)."""
        out: dict = {}
        for name in SECTIONS:
            out.update(getattr(self, name).model_dump(mode="json"))
        return out


def cross_checks(cfg: RunConfig) -> list[tuple[str, str]]:
    """Impossible combinations, as (key, problem) pairs; all are reported together."""
    m, d, a, t = cfg.model, cfg.data, cfg.adapter, cfg.train
    out: list[tuple[str, str]] = []
    if not d.datasets and not d.pretraining_dataset:
        out.append(("datasets", "no datasets given; add at least one under datasets:"))
    if d.pretraining_dataset and t.max_steps is None:
        out.append(("max_steps", "pretraining_dataset streams without an end, so max_steps is required"))
    if d.val_set_size and d.test_datasets:
        out.append(("val_set_size", "use either val_set_size or test_datasets, not both"))
    if a.adapter == "qlora" and not m.load_in_4bit:
        out.append(("load_in_4bit", "adapter: qlora needs load_in_4bit: true"))
    if m.load_in_4bit and a.adapter not in ("qlora", None):
        out.append(("load_in_4bit", f"load_in_4bit goes with adapter: qlora, not {a.adapter}"))
    if m.load_in_4bit and m.load_in_8bit:
        out.append(("load_in_8bit", "choose load_in_4bit or load_in_8bit, not both"))
    if t.bf16 is True and t.fp16:
        out.append(("fp16", "choose bf16 or fp16, not both"))
    if t.warmup_steps is not None and t.warmup_ratio is not None:
        out.append(("warmup_ratio", "set warmup_steps or warmup_ratio, not both"))
    if t.save_steps and t.saves_per_epoch:
        out.append(("saves_per_epoch", "set save_steps or saves_per_epoch, not both"))
    if t.eval_steps and t.evals_per_epoch:
        out.append(("evals_per_epoch", "set eval_steps or evals_per_epoch, not both"))
    if a.adapter in ("lora", "qlora") and not a.lora_target_linear and not a.lora_target_modules:
        out.append(("lora_target_modules", "LoRA needs lora_target_modules or lora_target_linear: true"))
    if a.adapter in SOFT_PROMPTS and t.sample_packing:
        out.append(("sample_packing", f"{a.adapter} prepends virtual tokens to each row; it cannot be packed"))
    if a.peft_prompt_tuning_init == "text" and not a.peft_prompt_tuning_init_text:
        out.append(("peft_prompt_tuning_init_text", "peft_prompt_tuning_init: text needs the init text"))
    if m.sdp_attention and m.flash_attention:
        out.append(("flash_attention", "choose sdp_attention or flash_attention, not both"))
    if not m.tokenizer_use_fast:
        out.append(("tokenizer_use_fast", "newtune needs a fast tokenizer; remove tokenizer_use_fast: false"))
    return out
