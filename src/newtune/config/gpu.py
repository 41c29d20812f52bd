"""Keys axolotl honours only on a CUDA GPU: `check` accepts them, `train` decides before loading anything.

On a machine without CUDA, `train` refuses every such key in one message (exit 2), unless newtune
does the same computation on the CPU (the Liger keys: Liger's kernels fuse math newtune's CPU paths
already compute, so the result is the same; train says so once). On a CUDA machine, the keys whose
GPU path newtune has not built yet are refused as "not supported yet", never ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from newtune.config.base import Section

if TYPE_CHECKING:
    from newtune.config.run import RunConfig

QuantDType = Literal["int4", "int8", "float8", "nvfp4", "mxfp4", "fp8"]


class QATConfig(Section):
    """axolotl's `qat:` block (torchao fake quantisation during training)."""

    weight_dtype: QuantDType = "int8"
    activation_dtype: QuantDType | None = None
    quantize_embedding: bool | None = None
    group_size: int | None = Field(None, ge=1)
    fake_quant_after_n_steps: int | None = Field(None, ge=0)


class GpuConfig(Section):
    # Liger kernels (axolotl.integrations.liger): fused versions of the same math.
    liger_rope: bool | None = Field(None, description="Liger RoPE kernel (CPU: newtune computes the same RoPE).")
    liger_rms_norm: bool | None = Field(None, description="Liger RMSNorm kernel (CPU: the same RMSNorm).")
    liger_rms_norm_gated: bool | None = Field(None, description="Liger gated RMSNorm (CPU: the same math).")
    liger_layer_norm: bool | None = Field(None, description="Liger LayerNorm kernel (CPU: the same LayerNorm).")
    liger_swiglu: bool | None = Field(None, description="Liger SwiGLU kernel (CPU: the same MLP).")
    liger_glu_activation: bool | None = Field(None, description="Liger GLU activation (CPU: the same MLP).")
    liger_cross_entropy: bool | None = Field(None, description="Liger cross entropy (CPU: newtune's loss, same value).")
    liger_fused_linear_cross_entropy: bool | None = Field(
        None, description="Liger fused LM head + loss (CPU: newtune's loss also never builds full logits).")
    liger_use_token_scaling: bool | None = Field(None, description="Liger token-scaled loss (changes the loss; GPU).")
    liger_kernel_impl: Literal["cutile", "cutedsl"] | None = Field(None, description="Liger kernel backend (GPU).")
    # Quantised bases and training.
    gptq: bool | None = Field(None, description="The base is a GPTQ checkpoint (GPU kernels).")
    model_quantization_config: Literal["Mxfp4Config", "FineGrainedFP8Config"] | None = Field(
        None, description="transformers quantisation config class for the base (GPU).")
    model_quantization_config_kwargs: dict[str, Any] | None = Field(None, description="Its arguments.")
    quantize_moe_experts: bool | None = Field(None, description="Quantise MoE expert weights on load (GPU).")
    qat: QATConfig | None = Field(None, description="torchao quantisation-aware training (GPU).")
    fp8: bool | None = Field(None, description="torchao float8 training (GPU with FP8 support).")
    fp8_enable_fsdp_float8_all_gather: bool | None = Field(None, description="FP8 all-gather under FSDP (GPU).")
    # Kernels and compilation.
    torch_compile: bool | Literal["auto"] | None = Field(None, description="torch.compile the model (GPU).")
    torch_compile_backend: str | None = Field(None, description="torch.compile backend.")
    torch_compile_mode: Literal["default", "reduce-overhead", "max-autotune"] | None = Field(
        None, description="torch.compile mode.")
    flex_attn_compile_kwargs: dict[str, Any] | None = Field(None, description="torch.compile options for flex attention.")
    use_kernels: bool | None = Field(None, description="Hub kernels (e.g. MegaBlocks) through transformers (GPU).")
    use_scattermoe: bool | None = Field(None, description="ScatterMoE expert kernels (GPU).")
    experts_implementation: str | None = Field(None, description="MoE experts kernel (GPU).")
    use_sonicmoe: bool | None = Field(None, description="SonicMoE expert kernels (GPU).")
    fused_attn_kernel: bool | None = Field(None, description="Fused attention kernel (GPU).")
    llama4_linearized_experts: bool | None = Field(None, description="Llama 4 experts as linear layers for quantisation (GPU).")
    gemma4_hybrid_attn_impl: bool | None = Field(
        None, description="Gemma 4: flash_attention_2 on sliding layers, sdpa on global ones (GPU).")


LIGER_SAME_MATH = ("liger_rope", "liger_rms_norm", "liger_rms_norm_gated", "liger_layer_norm", "liger_swiglu",
                   "liger_glu_activation", "liger_cross_entropy", "liger_fused_linear_cross_entropy")
# GPU keys newtune runs on a CUDA GPU today; every other GPU key is refused there as "not supported yet".
BUILT_ON_GPU = frozenset({"load_in_4bit", "load_in_8bit", "bnb_config_kwargs", "attn_implementation",
                          "optimizer"})
# Settings of another key: alone they ask for nothing.
SETTINGS_ONLY = ("torch_compile_backend", "torch_compile_mode", "flex_attn_compile_kwargs")
GPU_OPTIMIZERS = ("adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit",
                  "adamw_torch_8bit", "adamw_torch_4bit")
GPU_ATTENTION = ("flash_attention_2", "flash_attention_3", "flex_attention")


def _set(value: Any) -> bool:
    return value is not None and value is not False and value not in ("", [], {})


def gpu_keys(cfg: RunConfig) -> list[str]:
    """The keys of `cfg` (a RunConfig) that ask for something only a CUDA GPU does, Liger's left out."""
    m = cfg.model
    keys = [k for k, on in (("load_in_8bit", m.load_in_8bit), ("load_in_4bit", m.load_in_4bit),
                            ("bnb_config_kwargs", bool(m.bnb_config_kwargs)),
                            ("attn_implementation", m.attn_implementation in GPU_ATTENTION
                             or "/" in (m.attn_implementation or "")),
                            ("optimizer", cfg.train.optimizer in GPU_OPTIMIZERS)) if on]
    return keys + [k for k, v in cfg.gpu if _set(v) and k not in LIGER_SAME_MATH and k not in SETTINGS_ONLY]


def liger_keys(cfg: RunConfig) -> list[str]:
    return [k for k in LIGER_SAME_MATH if getattr(cfg.gpu, k)]


def describe(cfg: RunConfig, key: str) -> str:
    """`key: value` as the user wrote it, for messages."""
    for section in ("model", "train", "gpu"):
        part = getattr(cfg, section)
        if key in type(part).model_fields:
            value = getattr(part, key)
            return f"{key}: {value}" if isinstance(value, str) else key
    return key


def gpu_problems(cfg: RunConfig, device_type: str) -> list[str]:
    """What `train` must refuse on this device: GPU keys without CUDA, unbuilt GPU paths with it."""
    keys = gpu_keys(cfg)
    if device_type != "cuda":
        return [f"{describe(cfg, k)} needs a CUDA GPU, and this machine has none" for k in keys]
    return [f"{describe(cfg, k)}: not supported by newtune on GPU yet; remove it to continue"
            for k in keys if k not in BUILT_ON_GPU]


def check_device(cfg: RunConfig, device_type: str) -> str | None:
    """Raise one NewtuneError (exit 2) listing the GPU keys this device cannot run; the Liger note, if any.

    Called by `train` before anything loads.
    """
    from newtune.errors import NewtuneError

    problems = gpu_problems(cfg, device_type)
    if problems:
        hint = ("run it on a machine with a CUDA GPU, or remove these keys (newtune check accepts them)"
                if device_type != "cuda" else "remove these keys; see the README's GPU section")
        raise NewtuneError("", "\n".join(problems), hint)
    liger = liger_keys(cfg)
    if not liger:
        return None
    return (f"{', '.join(liger)}: newtune does not load the Liger kernels; its own {device_type.upper()} paths "
            "compute the same math (same loss and gradients)")
