"""Training fast paths written by hand, where transformers and peft leave time on the table on CPU.

1. Per-document causal attention (`VARLEN`, registered in transformers' AttentionInterface).
   transformers runs a packed batch through SDPA with a dense block-diagonal mask: every query row
   is scored against every key of its bin, and the masked blocks are computed and thrown away
   (the CPU flash kernel cannot skip them). Here the micro-batch arrives as one unpadded row with
   host-side document boundaries (`cu_seq_lens_q`, as for flash_attention_2), and each document
   runs through SDPA with `is_causal=True` on its own: no padding, no mask, no cross-document
   blocks. Splitting with `Tensor.split` keeps the backward to one concatenation (slicing would
   allocate a zero gradient of the whole tensor per document). Without boundaries, or with a KV
   cache, it is transformers' own SDPA (the mask function is SDPA's too), so generation works.

2. LoRA linear layers as one autograd function. peft computes `base(x) + lora_B(lora_A(drop(x))) *
   scaling`: the scaling, the sum and their backward are three full-size elementwise passes per
   layer, and autograd adds the two input gradients in a fourth. The function below folds the
   scaling into the small (rank-sized) products and the sum into the matmuls (`addmm_`), with the
   backward written out; results equal peft's to float rounding. It replaces `forward` on plain
   LoRA layers only (one active adapter on an nn.Linear, no DoRA or other variant, no LoRA bias,
   no autocast, one dtype) and hands every other case to peft's forward, checked on each call.
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
    from newtune.train.loss import unwrap_model

    cfg = getattr(unwrap_model(model), "config", None)
    return getattr(cfg, "_attn_implementation", None) in (VARLEN, "flash_attention_2", "flash_attention_3")


def enable_fast_paths(model: torch.nn.Module, device_type: str) -> list[str]:
    """Turn on what applies to this model on this device; returns what was turned on (for the log)."""
    from newtune.train.loss import is_prompt_learning, unwrap_model

    done = []
    base = unwrap_model(model)
    cfg = getattr(base, "config", None)
    # Soft prompts add virtual positions the batch's boundaries do not count; prefix tuning passes a cache.
    if (device_type == "cpu" and getattr(cfg, "_attn_implementation", None) == "sdpa"
            and not is_prompt_learning(model) and hasattr(base, "set_attn_implementation")):
        register_varlen_attention()
        base.set_attn_implementation(VARLEN)
        done.append("per-document attention")
    if patch_lora_linears(model):
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
            or getattr(self, "fan_in_fan_out", False) or torch.is_autocast_enabled(x.device.type)):
        return plain(self, x, *args, **kwargs)
    a, b = self.lora_A[name].weight, self.lora_B[name].weight
    if self.lora_B[name].bias is not None or not (x.dtype == base.weight.dtype == a.dtype == b.dtype):
        return plain(self, x, *args, **kwargs)
    drop = self.lora_dropout[name]
    x_drop = None if isinstance(drop, torch.nn.Identity) or not drop.training or drop.p == 0 else drop(x)
    return LoraLinearFunction.apply(x, x_drop, base.weight, base.bias, a, b, self.scaling[name])


def patch_lora_linears(model: torch.nn.Module) -> int:
    """Give every peft LoRA nn.Linear layer the fused forward; returns how many."""
    try:
        from peft.tuners.lora.layer import Linear as LoraLinear
    except ImportError:
        return 0
    n = 0
    for module in model.modules():
        if type(module) is LoraLinear and "forward" not in module.__dict__:
            module.forward = types.MethodType(_fused_lora_forward, module)
            n += 1
    return n
