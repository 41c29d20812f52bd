"""Keys for the optimisation run: schedule, precision, batching, packing, checkpoints, logging."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from newtune.config.base import NonEmptyStr, Section

OPTIMIZERS = (
    "adamw_torch", "adamw_torch_fused", "adamw_hf", "sgd", "adafactor",
    "adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit",
    "adamw_torch_8bit", "adamw_torch_4bit", "muon",
)  # fmt: skip
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_min_lr")

Precision = bool | Literal["auto"] | None
SEED_MAX = 2**32 - 1  # numpy's and torch's seeds are unsigned 32-bit

# axolotl plugins whose feature newtune has built in, so a config naming them means what it says.
BUILT_IN_PLUGINS = {
    "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin":
        "cut_cross_entropy: newtune's loss never materialises full-vocabulary logits",
    "axolotl.integrations.liger.LigerPlugin":
        "the plugin itself; its liger_* keys compute the same math on newtune's own paths (see config/gpu.py)",
}


class CheckpointingKwargs(Section):
    use_reentrant: bool = Field(False, description="torch.utils.checkpoint's reentrant variant.")


class TrainConfig(Section):
    output_dir: NonEmptyStr = Field("./outputs/newtune", description="Where the adapter/model, metrics and plots go.")
    seed: int = Field(42, ge=0, le=SEED_MAX, description="Seed for data order, splits, init and dropout.")
    data_seed: int | None = Field(None, ge=0, le=SEED_MAX, description="Seed of the batch order (default: seed), as transformers' data_seed.")
    micro_batch_size: int = Field(1, ge=1, description="Rows per forward pass.")
    eval_batch_size: int | None = Field(None, ge=1, description="Rows per eval forward pass (default micro_batch_size).")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    num_epochs: float = Field(1.0, gt=0, description="Passes over the training data.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate.")
    optimizer: Literal[OPTIMIZERS] = Field("adamw_torch", description="Optimizer name.")  # type: ignore[valid-type]
    lr_scheduler: Literal[SCHEDULERS] = Field("cosine", description="Learning-rate schedule.")  # type: ignore[valid-type]
    cosine_min_lr_ratio: float | None = Field(None, ge=0, le=1, description="cosine floor as a share of the peak.")
    cosine_constant_lr_ratio: float | None = Field(
        None, ge=0, le=1, description="cosine: reach cosine_min_lr_ratio at this share of the steps, then stay.")
    lr_quadratic_warmup: bool = Field(False, description="cosine: warm up quadratically instead of linearly.")
    warmup_steps: int | None = Field(None, ge=0, description="Linear warmup steps.")
    warmup_ratio: float | None = Field(None, ge=0, lt=1, description="Warmup as a share of total steps.")
    weight_decay: float = Field(0.0, ge=0, description="Decoupled weight decay.")
    adam_beta1: float = Field(0.9, gt=0, lt=1)
    adam_beta2: float = Field(0.999, gt=0, lt=1)
    adam_epsilon: float = Field(1e-8, gt=0)
    max_grad_norm: float | None = Field(1.0, ge=0, description="Clip gradients to this norm (0: no clipping).")
    bf16: Precision = Field("auto", description="true, false or auto (bf16 only where the hardware does it natively).")
    fp16: bool | None = Field(None, description="Train in fp16 with loss scaling (GPU).")
    fp32_master_weights: bool = Field(
        False, description="Full fine-tune in bf16: keep weights and optimizer state in fp32 under bf16 autocast "
        "(as the HF Trainer does) instead of in bf16 (as axolotl loads the model).")
    tf32: bool | None = Field(None, description="Allow TF32 matmuls on Ampere+ GPUs.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory.")
    activation_offloading: bool | Literal["legacy"] = Field(
        False, description="Keep activations saved for backward in CPU memory (torch save_on_cpu); legacy: the same.")
    tiled_mlp: bool = Field(False, description="Run each MLP over slices of the sequence, recomputed in backward "
                            "(axolotl's ALST TiledMLP: less activation memory, the same result).")
    tiled_mlp_num_shards: int | None = Field(None, ge=1, description="Slices per MLP call (default: one per 32768 tokens).")
    tiled_mlp_use_original_mlp: bool = Field(True, description="Tile the model's own MLP (false, axolotl's generic "
                                             "Llama MLP, is not supported).")
    gradient_checkpointing_kwargs: CheckpointingKwargs | None = Field(None, description="use_reentrant (default false).")
    cut_cross_entropy: bool | None = Field(
        None, description="Loss without full-vocabulary logits: newtune's loss always works so (accepted for axolotl configs).")
    plugins: list[str] | None = Field(None, description="axolotl plugins whose features newtune builds in (see README).")
    neftune_noise_alpha: float | None = Field(None, gt=0, description="NEFTune embedding noise.")
    sample_packing: bool = Field(False, description="Pack several rows into each sequence.")
    eval_sample_packing: bool | None = Field(None, description="Pack eval rows too (default: sample_packing).")
    pad_to_sequence_len: bool = Field(False, description="Pad every batch to sequence_len.")
    logging_steps: int = Field(1, ge=1, description="Log every N optimizer steps.")
    include_tkps: bool = Field(True, description="Log tokens/trainable, tokens/total and tokens/train_per_sec_per_gpu "
                               "(axolotl's throughput metrics; default true, as in axolotl).")
    include_tokens_per_second: bool | None = Field(
        None, description="Log num_input_tokens_seen and, at the end, train_tokens_per_second (the HF Trainer's).")
    dataloader_num_workers: int = Field(0, ge=0, description="Worker processes that collate batches ahead of the "
                                        "loop (0: in the training process).")
    dataloader_pin_memory: bool | None = Field(
        None, description="Pin batches in page-locked memory before the copy to the GPU (default: on a CUDA GPU).")
    dataloader_prefetch_factor: int | None = Field(None, ge=1, description="Batches each worker prepares ahead.")
    dataloader_drop_last: bool | None = Field(
        None, description="Drop each epoch's last micro-batch when it has fewer than micro_batch_size rows (unpacked).")
    group_by_length: bool = Field(False, description="Batch rows of similar length (transformers' LengthGroupedSampler).")
    remove_unused_columns: bool | None = Field(
        None, description="Accepted: newtune's batches hold only the model's inputs, whichever the value.")
    loss_watchdog_threshold: float | None = Field(
        None, gt=0, description="Stop (saving a checkpoint) when the logged loss stays above this.")
    loss_watchdog_patience: int | None = Field(None, ge=1, description="Logged steps above the threshold before stopping (default 3).")
    early_stopping_patience: int | None = Field(
        None, ge=1, description="End training after this many evaluations without a better eval loss.")
    eval_steps: int | None = Field(None, ge=1, description="Evaluate every N steps.")
    evals_per_epoch: int | None = Field(None, ge=0, description="Evaluations per epoch (0: no evaluation).")
    eval_strategy: Literal["no", "steps", "epoch"] | None = Field(
        None, description="no: never evaluate; epoch: at each epoch's end; steps: every eval_steps.")
    save_steps: int | None = Field(None, ge=1, description="Save a checkpoint every N steps.")
    saves_per_epoch: int | None = Field(None, ge=1, description="Checkpoints per epoch.")
    save_total_limit: int | None = Field(None, ge=1, description="Keep at most N checkpoints.")
    save_strategy: Literal["steps", "epoch", "no"] | None = Field(None, description="When to save checkpoints.")
    save_only_model: bool = Field(False, description="Checkpoints hold the weights only (no optimizer, scheduler or "
                                  "random states); training cannot resume from them.")
    resume_from_checkpoint: str | None = Field(None, description="Resume from this checkpoint directory.")
    auto_resume_from_checkpoints: bool = Field(False, description="Resume from the newest complete checkpoint.")
    use_tensorboard: bool = Field(False, description="Also log to TensorBoard in output_dir/runs.")
    wandb_project: str | None = None
    wandb_entity: str | None = None
    wandb_name: str | None = None
    wandb_mode: str | None = None
    wandb_run_id: str | None = None
    wandb_watch: Literal["gradients", "parameters", "all", "false", False] | None = Field(
        None, description="wandb.watch the model: gradients, parameters or all (histograms every max(100, logging_steps)).")
    wandb_log_model: Literal["checkpoint", "end", "false", False] | None = Field(
        None, description="Upload checkpoints (checkpoint) or the final model (end) as W&B model artifacts.")
    mlflow_tracking_uri: str | None = None
    mlflow_experiment_name: str | None = None
    mlflow_run_name: str | None = None
    strict: bool | None = Field(None, description="Accepted for axolotl compatibility; newtune is always strict.")

    @field_validator("max_steps", mode="before")
    @classmethod
    def _minus_one_is_no_limit(cls, v: Any) -> Any:
        return None if v == -1 and not isinstance(v, bool) else v  # HF Trainer's default: -1, no step limit

    @field_validator("eval_steps", "save_steps", mode="before")
    @classmethod
    def _no_fraction_of_the_run(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, float) and 0 < v < 1:
            per_epoch = "evals_per_epoch" if info.field_name == "eval_steps" else "saves_per_epoch"
            raise ValueError(f"{v} as a fraction of the run's steps (axolotl, HF Trainer) is not supported by newtune "
                             f"yet; give a step count, or use {per_epoch}")
        return v
