"""newtune's one patch module: the training fast paths written by hand, where transformers and peft leave
time on the table on CPU. Nothing else in newtune replaces or registers library behaviour (ARCHITECTURE
rule 7). Written against transformers 5.24 and peft 0.21; each patch below names its reason, its switch, and
the test in tests/model/test_patches.py that fails once upstream no longer needs it.

1. Per-document causal attention (`VARLEN`, registered in transformers' AttentionInterface).
   transformers runs a packed batch through SDPA with a dense block-diagonal mask: every query row
   is scored against every key of its bin, and the masked blocks are computed and thrown away
   (the CPU flash kernel cannot skip them). Here the micro-batch arrives as one unpadded row with
   host-side document boundaries (`cu_seq_lens_q`, as for flash_attention_2), and each document
   runs through SDPA with `is_causal=True` on its own: no padding, no mask, no cross-document
   blocks. Splitting with `Tensor.split` keeps the backward to one concatenation (slicing would
   allocate a zero gradient of the whole tensor per document). Without boundaries, or with a KV
   cache, it is transformers' own SDPA (the mask function is SDPA's too), so generation works.
   A supported hook (AttentionInterface), not a replaced method. Switch: any `attn_implementation` other
   than sdpa (e.g. eager) keeps transformers' attention. Upstream test: `..._sdpa_still_scores_masked_blocks`.

2. LoRA linear layers as one autograd function. peft computes `base(x) + lora_B(lora_A(drop(x))) *
   scaling`: the scaling, the sum and their backward are three full-size elementwise passes per
   layer, and autograd adds the two input gradients in a fourth. The function below folds the
   scaling into the small (rank-sized) products and the sum into the matmuls (`addmm_`), with the
   backward written out; results equal peft's to float rounding. It replaces `forward` on plain
   LoRA layers only (one active adapter on an nn.Linear, no DoRA or other variant, no LoRA bias)
   and hands every other case to peft's forward, checked on each call. Under autocast its inputs
   are cast to the autocast dtype first, as autocast casts a linear layer's. axolotl's
   `lora_mlp_kernel` / `lora_qkv_kernel` / `lora_o_kernel` name its own fused LoRA kernels: here
   they choose which projections get this function (default: all; false: peft's forward). This one
   replaces `forward` on the layer instances. Upstream test: `..._peft_still_scales_and_adds_full_size`.

3. Tiled MLP (`tiled_mlp`, axolotl's ALST TiledMLP). A decoder layer's MLP keeps its intermediate_size-wide
   activations of every token for the backward, the largest tensors of a long sequence. Here each MLP runs
   over `tiled_mlp_num_shards` slices of the sequence (unset: one per 32768 tokens, as axolotl), each under
   non-reentrant torch.utils.checkpoint, so only the slices' inputs are kept and one slice's activations are
   rebuilt at a time in the backward, as axolotl's autograd function does. An MLP acts on each token alone: the
   outputs are the untiled MLP's, the weight gradients the same sums taken slice by slice. Replaces `forward`
   on the `mlp` module instances; switch: `tiled_mlp`. Upstream test: `..._mlp_still_keeps_its_activations`.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F

VARLEN = "newtune_sdpa_varlen"


def sdpa_varlen(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                is_causal: bool | None = None, cu_seq_lens_q: torch.Tensor | None = None,
                cu_seq_lens_k: torch.Tensor | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """(1, heads, tokens, dim) queries of several documents → causal attention within each document."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    n = query.shape[2]
    if cu_seq_lens_q is None or query.shape[0] != 1 or key.shape[2] != n or not causal:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    bounds = cu_seq_lens_q.tolist()  # a host tensor on CPU: no device sync
    sizes = [e - s for s, e in zip(bounds[:-1], bounds[1:], strict=False)]
    if sum(sizes) != n:
        raise ValueError(f"document boundaries cover {sum(sizes)} tokens, the sequence has {n}")
    gqa = query.shape[1] != key.shape[1]
    outs = [F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True, scale=scaling, enable_gqa=gqa)
            for q, k, v in zip(query.split(sizes, 2), key.split(sizes, 2), value.split(sizes, 2), strict=True)]
    out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
    return out.transpose(1, 2).contiguous(), None


def register_varlen_attention() -> None:
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    del sdpa_attention_forward  # imported to fail early if transformers moved it
    AttentionInterface.register(VARLEN, sdpa_varlen)
    ALL_MASK_ATTENTION_FUNCTIONS.register(VARLEN, sdpa_mask)


def uses_flat_batches(model: torch.nn.Module) -> bool:
    """Whether this model's attention wants a micro-batch as one unpadded row with document boundaries."""
    from newtune.model.wrappers import unwrap_model

    cfg = getattr(unwrap_model(model), "config", None)
    return getattr(cfg, "_attn_implementation", None) in (VARLEN, "flash_attention_2", "flash_attention_3")


# Projection names per axolotl kernel switch, across the common architectures.
KERNEL_GROUPS = {
    "lora_mlp_kernel": frozenset({"gate_proj", "up_proj", "down_proj", "gate_up_proj", "fc1", "fc2", "w1", "w2",
                                  "w3", "c_fc", "dense_h_to_4h", "dense_4h_to_h"}),
    "lora_qkv_kernel": frozenset({"q_proj", "k_proj", "v_proj", "qkv_proj", "query_key_value", "Wqkv", "c_attn"}),
    "lora_o_kernel": frozenset({"o_proj", "out_proj", "dense", "c_proj"}),
}


def unfused_names(adapter_cfg: Any) -> frozenset[str]:
    """Projection names whose kernel switch is set to false."""
    out: frozenset[str] = frozenset()
    for key, names in KERNEL_GROUPS.items():
        if adapter_cfg is not None and getattr(adapter_cfg, key, None) is False:
            out |= names
    return out


def enable_fast_paths(model: torch.nn.Module, device_type: str, adapter_cfg: Any = None) -> list[str]:
    """Turn on what applies to this model on this device; returns what was turned on (for the log)."""
    from newtune.model.wrappers import is_prompt_learning, unwrap_model

    done = []
    base = unwrap_model(model)
    cfg = getattr(base, "config", None)
    # Soft prompts add virtual positions the batch's boundaries do not count; prefix tuning passes a cache.
    if (device_type == "cpu" and getattr(cfg, "_attn_implementation", None) == "sdpa"
            and not is_prompt_learning(model) and hasattr(base, "set_attn_implementation")):
        register_varlen_attention()
        base.set_attn_implementation(VARLEN)
        done.append("per-document attention")
    if patch_lora_linears(model, skip=unfused_names(adapter_cfg)):
        done.append("fused LoRA layers")
    return done


class LoraLinearFunction(torch.autograd.Function):
    """y = x Wᵀ + b + s · (drop(x) Aᵀ) Bᵀ, with the gradients of x, A, B (and W, b if they train)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, x_drop: torch.Tensor | None, weight: torch.Tensor,
                bias: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor, scaling: float) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        xd2 = x2 if x_drop is None else x_drop.reshape(-1, shape[-1])
        xa = xd2 @ a.t()  # (tokens, r)
        y = x2 @ weight.t() if bias is None else torch.addmm(bias, x2, weight.t())
        y.addmm_(xa, b.t(), alpha=scaling)
        ctx.save_for_backward(x2, xd2, xa, weight, a, b)
        ctx.scaling, ctx.shape, ctx.separate_drop = scaling, shape, x_drop is not None
        return y.view(*shape[:-1], y.shape[-1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x2, xd2, xa, weight, a, b = ctx.saved_tensors
        s, need = ctx.scaling, ctx.needs_input_grad
        g2 = grad.reshape(-1, grad.shape[-1])
        gxa = (g2 @ b).mul_(s)  # (tokens, r): the gradient reaching xa
        gx = gx_drop = None
        if need[0]:
            gx = g2 @ weight
            if ctx.separate_drop:
                gx_drop = (gxa @ a).view(ctx.shape)
            else:
                gx.addmm_(gxa, a)
            gx = gx.view(ctx.shape)
        ga = gxa.t() @ xd2 if need[4] else None
        # (xaᵀ g)ᵀ rather than gᵀ xa: the same product, much faster in oneDNN/MKL for a thin xa.
        gb = (xa.t() @ g2).t().mul_(s).contiguous() if need[5] else None
        gw = g2.t() @ x2 if need[2] else None
        gbias = g2.sum(0) if need[3] else None
        return gx, gx_drop, gw, gbias, ga, gb, None


def _fused_lora_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    plain = type(self).forward
    if args or kwargs or self.disable_adapters or self.merged or len(self.active_adapters) != 1:
        return plain(self, x, *args, **kwargs)
    name = self.active_adapters[0]
    base = self.base_layer
    if (name not in self.lora_A or name in self.lora_variant or type(base) is not torch.nn.Linear
            or getattr(self, "fan_in_fan_out", False) or self.lora_B[name].bias is not None):
        return plain(self, x, *args, **kwargs)
    tensors = [x, base.weight, base.bias, self.lora_A[name].weight, self.lora_B[name].weight]
    device = x.device.type
    if torch.is_autocast_enabled(device):  # as autocast runs a linear layer: in its lower precision
        dtype = torch.get_autocast_dtype(device)
        tensors = [None if t is None else t.to(dtype) for t in tensors]
    elif len({t.dtype for t in tensors if t is not None}) != 1:
        return plain(self, x, *args, **kwargs)  # e.g. fp32 adapter on a bf16 base: peft casts per branch
    x, weight, bias, a, b = tensors
    drop = self.lora_dropout[name]
    x_drop = None if isinstance(drop, torch.nn.Identity) or not drop.training or drop.p == 0 else drop(x)
    with torch.autocast(device, enabled=False):
        return LoraLinearFunction.apply(x, x_drop, weight, bias, a, b, self.scaling[name])


def patch_lora_linears(model: torch.nn.Module, skip: frozenset[str] = frozenset()) -> int:
    """Give every peft LoRA nn.Linear layer the fused forward, but those named in `skip`; returns how many."""
    try:
        from peft.tuners.lora.layer import Linear as LoraLinear
    except ImportError:
        return 0
    n = 0
    for qualified, module in model.named_modules():
        if type(module) is LoraLinear and "forward" not in module.__dict__ and qualified.rsplit(".", 1)[-1] not in skip:
            module.forward = types.MethodType(_fused_lora_forward, module)
            n += 1
    return n


TOKENS_PER_SHARD = 32768  # axolotl's default: ceil(tokens / 32768) slices


def _tiled_mlp_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    from torch.utils.checkpoint import checkpoint

    untiled = type(self).forward.__get__(self)
    if not torch.is_grad_enabled():
        return untiled(x)
    shards = self._newtune_shards or max(1, -(-x.shape[-2] // TOKENS_PER_SHARD))
    return torch.cat([checkpoint(untiled, part, use_reentrant=False) for part in x.chunk(shards, dim=-2)], dim=-2)


def tile_mlps(model: torch.nn.Module, on: bool, shards: int | None) -> int:
    """Patch 3 (`on`: tiled_mlp): every decoder layer's `mlp` runs in checkpointed slices of the sequence; the
    number patched."""
    n = 0
    if not on:
        return n
    for name, module in model.named_modules():
        if name.endswith(".mlp") and isinstance(module, torch.nn.Module) and "forward" not in vars(module):
            module._newtune_shards = shards
            module.forward = types.MethodType(_tiled_mlp_forward, module)
            n += 1
    return n
