"""Keys for several processes: DDP options, FSDP2 (`fsdp_config`), DeepSpeed and N-D parallel sizes.

Names and meanings are axolotl 0.21's. FSDP1-style keys (top-level `fsdp:` list, `fsdp_version: 1`,
`fsdp_`-prefixed or FSDP1-only `fsdp_config` keys) are translated to these by `config/fsdp1.py`
before validation, with a warning naming each translation.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from newtune.config.base import Section

StateDict = Literal["FULL_STATE_DICT", "SHARDED_STATE_DICT"]


class FSDPConfig(Section):
    """axolotl 0.21's `fsdp_config` keys, mapped onto accelerate's FullyShardedDataParallelPlugin (FSDP2)."""

    fsdp_version: Literal[2] = Field(2, description="FSDP version: 2 (fully_shard). FSDP1 configs are translated.")
    reshard_after_forward: bool | None = Field(
        None, description="Free gathered parameters after each forward (ZeRO-3 like); false keeps them (ZeRO-2 like).")
    offload_params: bool | None = Field(None, description="Keep parameters and optimizer state in CPU memory.")
    cpu_offload_pin_memory: bool | None = Field(None, description="Pin the offloaded CPU memory (default true).")
    cpu_ram_efficient_loading: bool | None = Field(
        None, description="Only rank 0 holds the full weights while loading; the others get their shards from it.")
    auto_wrap_policy: Literal["TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP", "NO_WRAP"] | None = Field(
        None, description="Which submodules become their own FSDP unit (default: the whole model as one).")
    transformer_layer_cls_to_wrap: str | None = Field(
        None, description="Layer class(es) wrapped under TRANSFORMER_BASED_WRAP, comma separated "
        "(default: the model's _no_split_modules).")
    min_num_params: int | None = Field(None, ge=1, description="SIZE_BASED_WRAP: parameters a module needs to be wrapped.")
    state_dict_type: StateDict | None = Field(
        None, description="Checkpoints: SHARDED_STATE_DICT (DCP, one file per rank; default) or FULL_STATE_DICT.")
    final_state_dict_type: StateDict | None = Field(
        None, description="The final output: FULL_STATE_DICT (default; a normal HF directory) or SHARDED_STATE_DICT.")
    activation_checkpointing: bool | None = Field(None, description="Recompute each wrapped layer's activations.")


class DistributedConfig(Section):
    ddp_timeout: int = Field(1800, ge=1, description="Seconds a collective (all-reduce, barrier) may wait for the "
                             "other processes before the run fails.")
    ddp_bucket_cap_mb: int | None = Field(None, ge=1, description="DDP gradient bucket size in MB (default 25).")
    ddp_broadcast_buffers: bool | None = Field(
        None, description="DDP: broadcast rank 0's buffers at each forward (default true).")
    ddp_find_unused_parameters: bool | None = Field(
        None, description="DDP: look for parameters without a gradient each step (needed when some go unused; "
        "default false).")
    fsdp_config: FSDPConfig | None = Field(None, description="Shard parameters, gradients and optimizer state (FSDP2).")
    fsdp_version: Literal[2] | None = Field(None, description="2 (FSDP1 configs are translated to FSDP2).")
    deepspeed: str | dict[str, Any] | None = Field(
        None, description="DeepSpeed JSON config (path, or a name like deepspeed_configs/zero3.json that newtune "
        "ships), or the config as a mapping.")
    dp_shard_size: int | None = Field(None, ge=1, description="Processes each parameter is sharded over (FSDP2).")
    dp_replicate_size: int | None = Field(
        None, ge=1, description="Replicas of the sharded model (HSDP: dp_replicate_size × dp_shard_size).")
    context_parallel_size: int | None = Field(None, ge=1, description="Processes each sequence is split over.")
    tensor_parallel_size: int | None = Field(None, ge=1, description="Processes each layer's weights are split over.")
