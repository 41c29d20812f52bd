"""Keys for parameter-efficient methods: LoRA family (peft) and soft prompts (prompt, prefix, p-tuning, multitask)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from newtune.config.base import Section

SOFT_PROMPTS = ("prompt_tuning", "prefix_tuning", "p_tuning", "multitask_prompt_tuning")
SOURCE_INITS = ("average_source_tasks", "exact_source_task", "only_source_shared")  # from a trained multitask prompt


class AdapterConfig(Section):
    adapter: Literal["lora", "qlora", "prompt_tuning", "prefix_tuning", "p_tuning", "multitask_prompt_tuning"] | None = Field(
        None, description="None: full fine-tune. lora, qlora, or a soft prompt method."
    )
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int | float = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input.")
    lora_target_modules: list[str] | str | None = Field(None, description="Module names (or a regex) to adapt.")
    lora_target_linear: bool = Field(False, description="Adapt every linear layer except the LM head.")
    lora_modules_to_save: list[str] | None = Field(None, description="Modules trained in full and saved with the adapter.")
    lora_model_dir: str | None = Field(None, description="Continue training from this saved adapter.")
    lora_target_parameters: list[str] | str | None = Field(
        None, description="Raw parameters (not modules) to adapt with LoRA, e.g. MoE experts (peft target_parameters).")
    unfrozen_parameters: list[str] | None = Field(
        None, description="Full fine-tune: train only parameters matching these regexes (optionally [start:end] rows).")
    lora_fan_in_fan_out: bool = Field(False, description="peft fan_in_fan_out (Conv1D layers, e.g. GPT-2).")
    lora_mlp_kernel: bool | None = Field(None, description="Fused LoRA layers for the MLP projections (default: where they apply).")
    lora_qkv_kernel: bool | None = Field(None, description="Fused LoRA layers for q/k/v (default: where they apply).")
    lora_o_kernel: bool | None = Field(None, description="Fused LoRA layer for the attention output (default: where it applies).")
    peft_use_dora: bool = Field(False, description="DoRA: weight-decomposed LoRA.")
    peft_use_rslora: bool = Field(False, description="rsLoRA: scale by alpha / sqrt(r).")
    # Soft prompts (peft PromptTuning / PrefixTuning / PromptEncoder).
    peft_num_virtual_tokens: int = Field(20, ge=1, description="Soft prompts: number of virtual tokens.")
    peft_prompt_tuning_init: Literal["random", "text", "average_source_tasks", "exact_source_task", "only_source_shared"] = Field(
        "random", description="prompt_tuning / multitask_prompt_tuning: initialise the prompt randomly or from text; "
        "multitask only, from the trained multitask prompt in peft_prompt_tuning_init_dir: the mean of its tasks "
        "(average_source_tasks), one task (exact_source_task), or its shared prompt alone (only_source_shared)."
    )
    peft_prompt_tuning_init_text: str | None = Field(None, description="prompt_tuning: the init text.")
    peft_prompt_tuning_init_dir: str | None = Field(
        None, description="multitask_prompt_tuning: output_dir (or adapter_model.safetensors) of a trained multitask prompt.")
    peft_prompt_tuning_init_task: int = Field(0, ge=0, description="multitask_prompt_tuning: the source task for exact_source_task.")
    peft_num_tasks: int = Field(1, ge=1, description="multitask_prompt_tuning: number of tasks (datasets[i].task_id < this).")
    peft_num_ranks: int = Field(1, ge=1, description="multitask_prompt_tuning: rank of each task's prompt matrix.")
    peft_prefix_projection: bool = Field(False, description="prefix_tuning: reparameterise the prefix with an MLP.")
    peft_encoder_hidden_size: int | None = Field(None, ge=1, description="p_tuning/prefix: encoder hidden size.")
    peft_encoder_reparameterization_type: Literal["MLP", "LSTM"] = Field("MLP", description="p_tuning encoder type.")
    peft_encoder_num_layers: int = Field(2, ge=1, description="p_tuning: encoder layers.")
    peft_encoder_dropout: float = Field(0.0, ge=0, lt=1, description="p_tuning: encoder dropout.")
