"""The hand-written fast paths equal what transformers and peft compute: losses, gradients, fallbacks."""

from __future__ import annotations

import copy

import pytest
import torch

from conftest import tiny_model
from newtune.config.adapter import AdapterConfig
from newtune.model.adapters import apply_adapter
from newtune.model.patches import VARLEN, enable_fast_paths, patch_lora_linears, uses_flat_batches
from newtune.train.collate import flat_batch, pack_batch, pad_batch
from newtune.train.loss import lm_loss_sum, unwrap_model
from tolerances import assert_close_sums, backward_terms, decoder_terms, rel_tol

VOCAB = 300


def rows(lengths=(9, 5, 17, 7, 1, 12), seed=0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(lengths):
        ids = torch.randint(3, VOCAB, (n,), generator=g).tolist()
        cut = n // 3 if i % 2 else 0
        out.append({"input_ids": ids, "labels": [-100] * cut + ids[cut:]})
    return out


def loss_and_grads(model, batch) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss, n = lm_loss_sum(model, batch)
    (loss / n).backward()
    return loss.item(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def assert_same(a, b):
    """The same loss and gradients up to the reordered sums of one forward and backward of the tiny model
    over the longest batch these tests build (rows() padded: 6 rows of up to 17 tokens)."""
    terms = backward_terms(tiny_model(VOCAB).config, 6 * 17)
    assert a[0] == pytest.approx(b[0], rel=rel_tol(terms))
    assert a[1].keys() == b[1].keys() and a[1]
    for k in a[1]:
        assert_close_sums(a[1][k], b[1][k], terms, msg=k)


def in_graph(t: torch.Tensor, node: str) -> bool:
    """Whether the autograd graph behind `t` has a node of this name."""
    seen, todo = set(), [t.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if type(fn).__name__ == node:
            return True
        todo += [f for f, _ in fn.next_functions]
    return False


def lora_model(**kw):
    cfg = AdapterConfig(adapter="lora", lora_r=4, lora_alpha=8, lora_target_linear=True, **kw)
    model = apply_adapter(tiny_model(VOCAB), cfg, None)
    torch.manual_seed(1)
    for name, p in model.named_parameters():  # lora_B starts at zero: give it values so every path counts
        if "lora_B" in name:
            p.data.normal_(0, 0.02)
    return model


def test_per_document_attention_equals_padded_sdpa():
    model = tiny_model(VOCAB)  # 4 query heads over 2 KV heads: the GQA path
    rs = rows()
    reference = loss_and_grads(model, pad_batch(rs, pad_id=0))
    enable_fast_paths(model, "cpu")
    assert model.config._attn_implementation == VARLEN and uses_flat_batches(model)
    flat = flat_batch(rs)
    assert flat.input_ids.shape == (1, sum(len(r["input_ids"]) for r in rs))
    assert_same(loss_and_grads(model, flat), reference)
    # Bins of several rows, flattened: still each row on its own.
    assert_same(loss_and_grads(model, pack_batch([rs[:3], rs[3:]], pad_id=0, flatten=True)), reference)


def test_varlen_model_still_handles_masks_and_generation():
    model = tiny_model(VOCAB)
    ref = copy.deepcopy(model)
    enable_fast_paths(model, "cpu")
    rs = rows()
    padded = pad_batch(rs, pad_id=0)  # no boundaries: transformers' SDPA with the padding mask
    assert_same(loss_and_grads(model, padded), loss_and_grads(ref, padded))
    prompt = torch.tensor([[5, 6, 7, 8]])
    kw = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": 0}
    assert torch.equal(model.generate(prompt, **kw), ref.generate(prompt, **kw))


def test_fast_paths_only_where_they_apply():
    eager = tiny_model(VOCAB)
    eager.set_attn_implementation("eager")
    assert enable_fast_paths(eager, "cpu") == []
    assert enable_fast_paths(tiny_model(VOCAB), "cuda") == []  # on GPUs: flash_attention_2 or SDPA's kernels
    prompt = apply_adapter(tiny_model(VOCAB), AdapterConfig(adapter="prompt_tuning", peft_num_virtual_tokens=4), None)
    assert enable_fast_paths(prompt, "cpu") == []  # virtual tokens are not in the batch's boundaries
    assert unwrap_model(prompt).config._attn_implementation == "sdpa"
    assert enable_fast_paths(lora_model(), "cpu") == ["per-document attention", "fused LoRA layers"]


@pytest.mark.parametrize("kw", [{}, {"lora_dropout": 0.3}, {"peft_use_rslora": True}])
def test_fused_lora_equals_peft(kw):
    model = lora_model(**kw)
    model.train()
    batch = pad_batch(rows(), pad_id=0)
    torch.manual_seed(7)  # dropout draws the same masks: the fused layer calls peft's own dropout module
    reference = loss_and_grads(model, batch)
    assert patch_lora_linears(model) == 14  # 7 linear layers × 2
    torch.manual_seed(7)
    fused = loss_and_grads(model, batch)
    assert_same(fused, reference)
    assert any("lora_A" in k for k in fused[1]) and any("lora_B" in k for k in fused[1])


def test_fused_lora_trains_base_weights_and_biases_when_asked():
    model = lora_model()
    linear = unwrap_model(model).model.layers[0].self_attn.q_proj
    linear.base_layer.bias = torch.nn.Parameter(torch.randn(linear.base_layer.out_features))
    linear.base_layer.weight.requires_grad_(True)
    batch = pad_batch(rows(), pad_id=0)
    reference = loss_and_grads(model, batch)
    patch_lora_linears(model)
    fused = loss_and_grads(model, batch)
    assert any(k.endswith("q_proj.base_layer.bias") for k in fused[1])
    assert_same(fused, reference)


def test_fused_lora_hands_other_cases_to_peft():
    batch = pad_batch(rows(), pad_id=0)
    dora = lora_model(peft_use_dora=True)
    reference = loss_and_grads(dora, batch)
    patch_lora_linears(dora)
    assert_same(loss_and_grads(dora, batch), reference)  # DoRA: peft's variant forward

    model = lora_model()
    patch_lora_linears(model)
    with torch.no_grad():
        with model.disable_adapter():
            base_only = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        plain = tiny_model(VOCAB)(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert_close_sums(base_only, plain, decoder_terms(model.config, batch.input_ids.numel()))


def test_fused_lora_under_autocast_computes_in_the_autocast_dtype():
    model = lora_model()
    batch = pad_batch(rows(), pad_id=0)

    def run():
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        logits.float().sum().backward()
        return logits, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    ref_logits, ref_grads = run()
    assert not in_graph(ref_logits, "LoraLinearFunctionBackward")
    patch_lora_linears(model)
    logits, grads = run()
    assert logits.dtype == torch.bfloat16 and in_graph(logits, "LoraLinearFunctionBackward")
    assert all(g.dtype == torch.float32 for g in grads.values())  # fp32 adapter weights get fp32 gradients
    # Both run in bfloat16; the fused path rounds each projection's output to bfloat16 at another point than
    # peft (base and LoRA summed before or after rounding): one bfloat16 rounding (relative 2**-8) per
    # projection of each layer (7) and the head, against the logits' scale.
    roundings = 7 * model.config.num_hidden_layers + 1
    bf16_u = torch.finfo(torch.bfloat16).eps / 2
    atol = roundings * bf16_u * ref_logits.float().abs().max().item()
    torch.testing.assert_close(logits.float(), ref_logits.float(), rtol=0.0, atol=atol)
    # A relative error d leaves a cosine of about 1 - d**2 / 2: 0.99 allows d = 0.14, twice the roundings above.
    for k in ref_grads:
        assert torch.nn.functional.cosine_similarity(grads[k].flatten(), ref_grads[k].flatten(), dim=0) > 0.99, k


def test_kernel_switches_choose_the_fused_projections():
    from newtune.model.patches import unfused_names

    cfg = AdapterConfig(adapter="lora", lora_target_linear=True, lora_mlp_kernel=False)
    model = lora_model()
    assert patch_lora_linears(model, skip=unfused_names(cfg)) == 8  # q, k, v, o in 2 layers
    fused = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if "forward" in m.__dict__}
    assert fused == {"q_proj", "k_proj", "v_proj", "o_proj"}
    off = AdapterConfig(adapter="lora", lora_target_linear=True, lora_qkv_kernel=False, lora_o_kernel=False,
                        lora_mlp_kernel=False)
    assert patch_lora_linears(lora_model(), skip=unfused_names(off)) == 0


def test_fused_lora_breaks_if_the_formula_breaks(monkeypatch):
    """The equality tests above compare against peft, so a wrong fused formula must show up there."""
    import newtune.model.patches as K

    model = lora_model()
    batch = pad_batch(rows(), pad_id=0)
    reference = loss_and_grads(model, batch)
    real = K.LoraLinearFunction.forward

    def doubled(ctx, x, x_drop, weight, bias, a, b, scaling):
        return real(ctx, x, x_drop, weight, bias, a, b, 2 * scaling)

    monkeypatch.setattr(K.LoraLinearFunction, "forward", staticmethod(doubled))
    patch_lora_linears(model)
    with pytest.raises(AssertionError):
        assert_same(loss_and_grads(model, batch), reference)


# The reasons for the patches, checked against the libraries: when one of these fails, upstream has done
# what the patch does, and the patch should go (ARCHITECTURE rule 7).

def test_upstream_sdpa_still_scores_masked_blocks(monkeypatch):
    """Why per-document attention: transformers runs a packed batch through SDPA with one dense mask over
    the whole bin (T × T scores per head, most of them masked), not document by document."""
    import transformers.integrations.sdpa_attention as sdpa

    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def record(q, k, v, attn_mask=None, **kw):
        calls.append((q.shape[-2], k.shape[-2], None if attn_mask is None else tuple(attn_mask.shape[-2:])))
        return real(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(sdpa.torch.nn.functional, "scaled_dot_product_attention", record)
    model = tiny_model(VOCAB).eval()
    model.set_attn_implementation("sdpa")
    batch = pack_batch([rows((9, 5, 17))], pad_id=0)
    with torch.no_grad():
        model(**batch.model_inputs())  # what the loop gives a model without the patch
    width = batch.input_ids.shape[1]
    assert calls and all(call == (width, width, (width, width)) for call in calls), calls


def test_upstream_peft_still_scales_and_adds_full_size():
    """Why fused LoRA: peft's LoRA Linear forward still runs the scaling and the sum as separate passes
    over the full-size output (the fused function folds them into the matmuls)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class FullSize(TorchDispatchMode):
        def __init__(self, shape):
            super().__init__()
            self.shape, self.ops = shape, []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and tuple(out.shape) == self.shape:
                self.ops.append(func.overloadpacket.__name__)
            return out

    model = lora_model(lora_dropout=0.0)
    layer = next(m for n, m in model.named_modules() if n.endswith("q_proj") and hasattr(m, "lora_A"))
    x = torch.randn(3, 7, layer.in_features)
    mode = FullSize((3, 7, layer.out_features))
    with torch.no_grad(), mode:
        layer(x)
    assert "mul" in mode.ops and "add" in mode.ops, mode.ops
