"""RunConfig: the four topic sections plus the checks that span them. Frozen."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from newtune.config.adapter import SOFT_PROMPTS, SOURCE_INITS, AdapterConfig
from newtune.config.data import DataConfig
from newtune.config.distributed import DistributedConfig
from newtune.config.gpu import GpuConfig
from newtune.config.model import ModelConfig
from newtune.config.preference import METHOD_KEYS, PreferenceConfig
from newtune.config.train import BUILT_IN_PLUGINS, TrainConfig

SECTIONS: dict[str, type[BaseModel]] = {
    "model": ModelConfig,
    "data": DataConfig,
    "adapter": AdapterConfig,
    "train": TrainConfig,
    "gpu": GpuConfig,
    "distributed": DistributedConfig,
    "pref": PreferenceConfig,
}


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelConfig
    data: DataConfig
    adapter: AdapterConfig
    train: TrainConfig
    gpu: GpuConfig
    distributed: DistributedConfig
    pref: PreferenceConfig

    def flat(self) -> dict:
        """The resolved config as flat axolotl-style YAML keys (defaults filled in)."""
        out: dict = {}
        for name in SECTIONS:
            out.update(getattr(self, name).model_dump(mode="json", by_alias=True))
        return out


# Impossible combinations: (key, broken(cfg), problem). Each is checked; all failures are reported together.
RULES: list[tuple[str, Callable[[RunConfig], bool], str]] = [
    ("datasets", lambda c: not c.data.datasets and not c.data.pretraining_dataset,
     "no datasets given; add at least one under datasets:"),
    ("max_steps", lambda c: bool(c.data.pretraining_dataset) and c.train.max_steps is None,
     "pretraining_dataset streams without an end, so max_steps is required"),
    ("val_set_size", lambda c: bool(c.data.val_set_size and c.data.test_datasets),
     "use either val_set_size or test_datasets, not both"),
    ("load_in_4bit", lambda c: c.adapter.adapter == "qlora" and not c.model.load_in_4bit,
     "adapter: qlora needs load_in_4bit: true"),
    ("load_in_4bit", lambda c: c.model.load_in_4bit and c.adapter.adapter not in ("qlora", None),
     "load_in_4bit goes with adapter: qlora"),
    ("load_in_8bit", lambda c: c.model.load_in_4bit and c.model.load_in_8bit,
     "choose load_in_4bit or load_in_8bit, not both"),
    ("fp16", lambda c: c.train.bf16 is True and bool(c.train.fp16), "choose bf16 or fp16, not both"),
    ("warmup_ratio", lambda c: c.train.warmup_steps is not None and c.train.warmup_ratio is not None,
     "set warmup_steps or warmup_ratio, not both"),
    ("saves_per_epoch", lambda c: bool(c.train.save_steps and c.train.saves_per_epoch),
     "set save_steps or saves_per_epoch, not both"),
    ("evals_per_epoch", lambda c: bool(c.train.eval_steps and c.train.evals_per_epoch),
     "set eval_steps or evals_per_epoch, not both"),
    ("lora_target_modules", lambda c: c.adapter.adapter in ("lora", "qlora") and not c.adapter.lora_target_linear
     and not c.adapter.lora_target_modules and not c.adapter.lora_target_parameters,
     "LoRA needs lora_target_modules, lora_target_parameters or lora_target_linear: true"),
    ("cosine_constant_lr_ratio", lambda c: c.train.cosine_constant_lr_ratio is not None
     and (c.train.lr_scheduler != "cosine" or not c.train.cosine_min_lr_ratio),
     "cosine_constant_lr_ratio goes with lr_scheduler: cosine and a cosine_min_lr_ratio (axolotl ignores it otherwise)"),
    ("lr_quadratic_warmup", lambda c: c.train.lr_quadratic_warmup and (c.train.lr_scheduler != "cosine"
     or c.train.cosine_min_lr_ratio is not None), "lr_quadratic_warmup goes with lr_scheduler: cosine without "
     "cosine_min_lr_ratio (axolotl ignores one of them otherwise)"),
    ("activation_offloading", lambda c: bool(c.train.activation_offloading) and not c.train.gradient_checkpointing,
     "activation_offloading needs gradient_checkpointing: true (as in axolotl)"),
    ("sample_packing", lambda c: c.adapter.adapter in SOFT_PROMPTS and c.train.sample_packing,
     "soft prompts prepend virtual tokens to each row; they cannot be packed"),
    ("peft_prompt_tuning_init_text", lambda c: c.adapter.peft_prompt_tuning_init == "text"
     and not c.adapter.peft_prompt_tuning_init_text, "peft_prompt_tuning_init: text needs the init text"),
    ("peft_prompt_tuning_init", lambda c: c.adapter.peft_prompt_tuning_init in SOURCE_INITS
     and c.adapter.adapter != "multitask_prompt_tuning",
     "average_source_tasks, exact_source_task and only_source_shared initialise adapter: multitask_prompt_tuning only"),
    ("peft_prompt_tuning_init_dir", lambda c: c.adapter.peft_prompt_tuning_init in SOURCE_INITS
     and not c.adapter.peft_prompt_tuning_init_dir,
     "this peft_prompt_tuning_init reads a trained multitask prompt: set peft_prompt_tuning_init_dir to its output_dir"),
    ("peft_num_tasks", lambda c: c.adapter.peft_prompt_tuning_init in ("average_source_tasks", "exact_source_task")
     and c.adapter.peft_num_tasks != 1, "average_source_tasks and exact_source_task start one target task: "
     "set peft_num_tasks: 1 (or use only_source_shared)"),
    ("plugins", lambda c: bool(set(c.train.plugins or ()) - set(BUILT_IN_PLUGINS)),
     "newtune has no plugin system; it builds in only " + ", ".join(BUILT_IN_PLUGINS) + " (remove the others)"),
    *[(key, lambda c, key=key: c.adapter.peft_use_dora and getattr(c.adapter, key) is True,
       "fused LoRA layers do not apply to DoRA (peft_use_dora); remove it or set it false")
      for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel")],
    ("deepspeed", lambda c: bool(c.distributed.deepspeed and c.distributed.fsdp_config),
     "choose deepspeed or fsdp_config, not both: each shards the model its own way"),
    ("fsdp_config", lambda c: bool(c.distributed.fsdp_config and c.model.load_in_8bit),
     "FSDP2 cannot shard 8-bit (bitsandbytes) weights; use adapter: qlora with load_in_4bit, or DDP"),
    ("fsdp_config.min_num_params", lambda c: bool(c.distributed.fsdp_config and c.distributed.fsdp_config.auto_wrap_policy
     == "SIZE_BASED_WRAP" and not c.distributed.fsdp_config.min_num_params),
     "auto_wrap_policy: SIZE_BASED_WRAP needs min_num_params"),
    *[(key, lambda c, key=key: not c.data.rl and getattr(c.pref, key) is not None,
       "a preference-training key: set rl: dpo (or ipo, orpo, simpo) to use it, or remove it")
      for key in PreferenceConfig.model_fields],
    *[(key, lambda c, key=key, methods=methods: bool(c.data.rl) and c.data.rl not in methods
       and getattr(c.pref, key) is not None, f"{key} applies to rl: {' / '.join(methods)} only; remove it")
      for key, methods in METHOD_KEYS.items()],
    ("dpo_label_smoothing", lambda c: c.data.rl == "dpo" and bool(c.pref.dpo_label_smoothing)
     and c.pref.dpo_loss_type is None, "dpo_label_smoothing is used only by the robust and exo_pair losses (TRL 1.14, "
     "which axolotl 0.21.0 runs, ignores it for sigmoid); set dpo_loss_type: [robust] or remove it"),
    ("rl_beta", lambda c: c.data.rl == "orpo" and c.pref.rl_beta is not None and c.pref.orpo_alpha is not None,
     "rl: orpo takes its odds-ratio weight from orpo_alpha or rl_beta (axolotl passes either as TRL's beta, "
     "rl_beta first); set only one"),
    ("simpo_gamma", lambda c: c.data.rl == "simpo" and c.pref.simpo_gamma is None,
     "rl: simpo needs simpo_gamma, its target reward margin (axolotl 0.21.0 passes no default; the SimPO paper "
     "uses 0.5 to 1.6)"),
    ("dpo_loss_type", lambda c: c.data.rl == "ipo" and c.pref.dpo_loss_type is not None,
     "rl: ipo is DPO with dpo_loss_type [ipo]; use rl: dpo to choose other loss types"),
    ("dpo_label_smoothing", lambda c: c.data.rl == "ipo" and bool(c.pref.dpo_label_smoothing),
     "IPO takes no label smoothing (axolotl passes none for rl: ipo)"),
    ("lora_model_dir", lambda c: bool(c.data.rl) and bool(c.adapter.lora_model_dir),
     "preference training from a saved adapter is not supported yet (TRL's reference would be that adapter)"),
    ("sample_packing", lambda c: bool(c.data.rl) and c.train.sample_packing,
     "preference pairs are not packed (chosen and rejected share a prompt); remove sample_packing"),
    ("dataloader_prefetch_factor", lambda c: c.train.dataloader_prefetch_factor is not None
     and not c.train.dataloader_num_workers, "dataloader_prefetch_factor needs dataloader_num_workers above 0: only "
     "worker processes prepare batches ahead (transformers refuses it too)"),
    ("group_by_length", lambda c: c.train.group_by_length and c.train.sample_packing,
     "group_by_length has no effect with sample_packing (axolotl packs with its own sampler); remove one"),
    ("group_by_length", lambda c: c.train.group_by_length and bool(c.data.rl),
     "group_by_length has no effect in preference training (axolotl passes it to supervised runs only); remove it"),
    ("shuffle_before_merging_datasets", lambda c: c.data.shuffle_before_merging_datasets and bool(c.data.rl),
     "shuffle_before_merging_datasets is not supported by newtune in preference training yet; remove it"),
    ("save_only_model", lambda c: c.train.save_only_model and bool(c.distributed.fsdp_config),
     "save_only_model with fsdp_config is not supported by newtune yet (sharded checkpoints hold the optimizer "
     "shards); remove one"),
    ("save_only_model", lambda c: c.train.save_only_model and c.train.auto_resume_from_checkpoints,
     "checkpoints saved with save_only_model hold no optimizer or scheduler state, so auto_resume_from_checkpoints "
     "could never resume from them; remove one"),
    ("optimizer", lambda c: c.train.optimizer == "muon" and bool(c.distributed.fsdp_config or c.distributed.deepspeed),
     "optimizer: muon with fsdp_config or deepspeed is not supported by newtune yet (axolotl runs a distributed "
     "Muon there, and refuses DeepSpeed); use DDP or another optimizer"),
    ("tiled_mlp_use_original_mlp", lambda c: c.train.tiled_mlp and not c.train.tiled_mlp_use_original_mlp,
     "tiled_mlp_use_original_mlp: false (axolotl's generic Llama MLP in place of the model's) is not supported by "
     "newtune yet; newtune tiles the model's own MLP"),
    ("tokenizer_use_fast", lambda c: not c.model.tokenizer_use_fast,
     "newtune needs a fast tokenizer; remove tokenizer_use_fast: false"),
]


def cross_checks(cfg: RunConfig) -> list[tuple[str, str]]:
    """Impossible combinations, as (key, problem) pairs; all are reported together."""
    return [(key, problem) for key, broken, problem in RULES if broken(cfg)] + task_id_problems(cfg) + weight_problems(cfg)


def weight_problems(cfg: RunConfig) -> list[tuple[str, str]]:
    """datasets[i].weight: axolotl 0.21.0 subsamples supervised datasets only."""
    if not cfg.data.rl:
        return []
    return [(f"{part}[{i}].weight", "weight has no effect in preference training (axolotl 0.21.0 subsamples "
             "supervised datasets only); remove it")
            for part in ("datasets", "test_datasets") for i, ds in enumerate(getattr(cfg.data, part) or [])
            if ds.weight is not None]


def task_id_problems(cfg: RunConfig) -> list[tuple[str, str]]:
    """datasets[i].task_id: for adapter: multitask_prompt_tuning only, below peft_num_tasks."""
    out = []
    multitask = cfg.adapter.adapter == "multitask_prompt_tuning"
    for part in ("datasets", "test_datasets"):
        for i, ds in enumerate(getattr(cfg.data, part) or []):
            if ds.task_id is None:
                continue
            if not multitask:
                out.append((f"{part}[{i}].task_id", "task_id goes with adapter: multitask_prompt_tuning"))
            elif ds.task_id >= cfg.adapter.peft_num_tasks:
                out.append((f"{part}[{i}].task_id", f"task_id {ds.task_id} is not below peft_num_tasks "
                             f"({cfg.adapter.peft_num_tasks}); tasks are numbered from 0"))
    return out
