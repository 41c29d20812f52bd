"""Several processes: the Accelerator for the config's strategy (DDP, FSDP2, DeepSpeed) and data prepared once.

All of it is accelerate's and torch.distributed's; this module only turns axolotl's keys into their
arguments, and says clearly what cannot run where.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from newtune.config.distributed import DistributedConfig, FSDPConfig
from newtune.errors import NewtuneError


def world_size() -> int:
    """Processes in the run, from the launcher's environment (torchrun, accelerate launch, --nproc)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def use_cpu() -> bool:
    """Run on the CPU: asked for (`accelerate launch --cpu`), or several processes and no CUDA GPU.

    accelerate picks its gloo backend only when told to use the CPU; without this, `torchrun` on a
    machine without a GPU would start N independent single-process runs.
    """
    from accelerate.utils import parse_flag_from_env

    if parse_flag_from_env("ACCELERATE_USE_CPU"):
        return True
    import torch

    return world_size() > 1 and not torch.cuda.is_available()


def shards(d: DistributedConfig) -> bool:
    """Parameters split across processes (FSDP2 or DeepSpeed): CPU fast paths do not apply to sharded layers."""
    return world_size() > 1 and bool(d.fsdp_config or d.deepspeed)


def partial_state(d: DistributedConfig) -> Any:
    """accelerate's process state; it starts the process group, so it gets the collective timeout (ddp_timeout)."""
    from accelerate import PartialState

    return PartialState(cpu=use_cpu(), timeout=timedelta(seconds=d.ddp_timeout))


def make_accelerator(d: DistributedConfig, *, mixed_precision: str) -> Any:
    """The Accelerator with DDP options, process-group timeout and the FSDP2 / DeepSpeed plugin of the config."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

    ddp = {k: v for k, v in (("bucket_cap_mb", d.ddp_bucket_cap_mb), ("broadcast_buffers", d.ddp_broadcast_buffers),
                             ("find_unused_parameters", d.ddp_find_unused_parameters)) if v is not None}
    handlers = [InitProcessGroupKwargs(timeout=timedelta(seconds=d.ddp_timeout)), DistributedDataParallelKwargs(**ddp)]
    cpu = use_cpu()
    check_world(d)
    partial_state(d)
    fsdp = fsdp_plugin(d.fsdp_config) if d.fsdp_config is not None and world_size() > 1 else None
    deepspeed = deepspeed_plugin(d.deepspeed, cpu=cpu) if d.deepspeed else None
    acc = Accelerator(mixed_precision=mixed_precision, kwargs_handlers=handlers, cpu=cpu, fsdp_plugin=fsdp,
                      deepspeed_plugin=deepspeed)
    if fsdp is not None and cpu:
        force_fsdp_on_cpu(fsdp)
    if not acc.is_main_process:
        quiet()
    return acc


def quiet() -> None:
    """Ranks other than 0 keep warnings and errors only: one copy of newtune's log and no progress bars."""
    import logging

    import datasets
    import transformers

    logging.getLogger("newtune").setLevel(logging.WARNING)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_warning()
    datasets.disable_progress_bars()


def fsdp_plugin(f: FSDPConfig) -> Any:
    """accelerate's FSDP2 plugin from axolotl's fsdp_config keys; unset keys keep accelerate's defaults."""
    from accelerate import FullyShardedDataParallelPlugin

    kw: dict[str, Any] = {"fsdp_version": 2}
    if f.reshard_after_forward is not None:
        kw["reshard_after_forward"] = f.reshard_after_forward
    if f.offload_params:
        from torch.distributed.fsdp import CPUOffloadPolicy

        kw["cpu_offload"] = CPUOffloadPolicy(pin_memory=f.cpu_offload_pin_memory is not False)
    if f.cpu_ram_efficient_loading is not None:
        kw["cpu_ram_efficient_loading"] = f.cpu_ram_efficient_loading
    if f.auto_wrap_policy:
        kw["auto_wrap_policy"] = f.auto_wrap_policy.lower()
    if f.transformer_layer_cls_to_wrap:
        kw["transformer_cls_names_to_wrap"] = [c.strip() for c in f.transformer_layer_cls_to_wrap.split(",")]
    if f.min_num_params:
        kw["min_num_params"] = f.min_num_params
    kw["state_dict_type"] = f.state_dict_type or "SHARDED_STATE_DICT"
    if f.activation_checkpointing is not None:
        kw["activation_checkpointing"] = f.activation_checkpointing
    return FullyShardedDataParallelPlugin(**kw)


def force_fsdp_on_cpu(plugin: Any) -> None:
    """Make accelerate run FSDP2 over gloo on CPU processes.

    accelerate 1.15 enables its FSDP plugin only for accelerator devices (MULTI_GPU, ...) and silently runs
    plain MULTI_CPU otherwise, although torch's `fully_shard` works on CPU with gloo. Both state objects
    are set, since each AcceleratorState() re-reads PartialState's. tests/train/test_distributed.py fails
    once accelerate does this itself, and this function can go.
    """
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    state = AcceleratorState()
    state.fsdp_plugin = plugin
    state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP


def check_world(d: DistributedConfig, world: int | None = None) -> None:
    """The N-D sizes must multiply to the number of processes; what newtune cannot run is refused here."""
    world = world or world_size()
    sizes = {k: getattr(d, k) for k in ("dp_shard_size", "dp_replicate_size", "context_parallel_size",
                                        "tensor_parallel_size") if getattr(d, k)}
    product = 1
    for v in sizes.values():
        product *= v
    # dp_shard_size unset: it takes the processes the other sizes leave, so they need only divide the world
    fits = product == world if "dp_shard_size" in sizes else world % product == 0
    if not fits:
        shown = " × ".join(f"{k} {v}" for k, v in sizes.items())
        raise NewtuneError(", ".join(sizes), f"{shown} = {product} processes, but this run has {world}",
                           f"start {product} processes (--nproc {product}) or change the sizes")
    if (d.dp_shard_size or 1) > 1 and not d.fsdp_config:
        raise NewtuneError("dp_shard_size", "dp_shard_size shards the model with FSDP2, which needs fsdp_config",
                           "add fsdp_config (fsdp_version: 2), or remove dp_shard_size for plain DDP")
    if (d.context_parallel_size or 1) > 1:
        raise NewtuneError("context_parallel_size", "context parallelism is not supported by newtune yet "
                           "(it needs accelerate's ring attention on CUDA with SDPA, and newtune's loss over "
                           "split sequences)", "remove context_parallel_size")
    if (d.tensor_parallel_size or 1) > 1:
        raise NewtuneError("tensor_parallel_size", "tensor parallelism is not supported by newtune yet",
                           "remove tensor_parallel_size; shard with fsdp_config instead")
    if (d.dp_replicate_size or 1) > 1:
        raise NewtuneError("dp_replicate_size", "replicas of a sharded model (HSDP) are not supported by newtune yet",
                           "remove dp_replicate_size: fsdp_config alone shards over all processes")


def deepspeed_plugin(spec: Any, *, cpu: bool) -> Any:
    """DeepSpeed: the config is read (path, shipped name or mapping), then refused with the reason.

    accelerate's DeepSpeed engine steps itself on every backward and scales the loss by its own
    accumulation count; newtune's loop normalises each step by its trained-token count and steps once per
    step, and wiring the two together needs a GPU to verify. Until then: FSDP2 covers ZeRO-2/3.
    """
    import importlib.util

    from newtune.train.deepspeed import load_deepspeed_config, zero_stage

    stage = zero_stage(load_deepspeed_config(spec, micro_batch_size=1, accumulation=1, world=1, max_grad_norm=None,
                                             bf16=False, fp16=False))
    if importlib.util.find_spec("deepspeed") is None:
        raise NewtuneError("deepspeed", "missing deepspeed package: DeepSpeed configs need it installed",
                           "pip install deepspeed (GPU machines), or use fsdp_config instead")
    hint = (f"use fsdp_config (fsdp_version: 2, reshard_after_forward: {str(stage != 2).lower()}) for ZeRO-{stage}-like "
            "sharding" if stage in (2, 3) else "use DDP (no key) or fsdp_config")
    raise NewtuneError("deepspeed", "DeepSpeed through newtune's training loop is not supported yet"
                       + (" (and accelerate runs DeepSpeed on GPUs only)" if cpu else ""), hint)


def check_resume(checkpoint: Path, accumulation: int, world: int) -> None:
    """A run resumed on another number of processes must keep the batch: accumulation × processes."""
    from newtune.train.sharded import saved_batching

    saved_accumulation, saved_world = saved_batching(checkpoint)
    saved, micro_per_step = saved_accumulation * saved_world, accumulation * world
    if saved_world != world and saved != micro_per_step:
        raise NewtuneError("gradient_accumulation_steps", f"{checkpoint} took {saved} micro-batches per step "
                           f"(gradient_accumulation_steps × processes), this run takes {micro_per_step}",
                           "set gradient_accumulation_steps so that it × processes is the same, to resume exactly")


@contextmanager
def data_first(acc: Any, cache_root: Path) -> Iterator[None]:
    """Rank 0 prepares the data while the others wait on a file lock, never inside a collective.

    Rank 0 takes the lock, then all ranks meet in a barrier (everyone arrives at once: nothing slow has
    run yet), then rank 0 tokenizes while holding it; the others block on the lock, which has no timeout,
    and then read the cache rank 0 wrote. A tokenization longer than ddp_timeout cannot fail the run.
    On nodes without a shared filesystem each node's first rank to take its local lock fills that node's cache.
    """
    if acc.num_processes == 1:
        yield
        return
    from filelock import FileLock

    cache_root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(cache_root / "newtune-prepare.lock"))
    if acc.is_main_process:
        with lock:
            acc.wait_for_everyone()
            yield
    else:
        acc.wait_for_everyone()
        with lock:
            yield
