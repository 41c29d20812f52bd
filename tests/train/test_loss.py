"""lm_loss_sum: equals the reference loss, packed equals unpacked, and accumulation is exact."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from newtune.train.collate import pack_batch, pad_batch
from newtune.train.loss import fast_path_applies, lm_loss_sum
from tolerances import assert_close_sums, backward_terms, decoder_terms, rel_tol

VOCAB = 512


def tiny_model(vocab_size: int):
    """tests/conftest.py's tiny Llama (imported by path: tests/train/conftest.py shadows the name)."""
    spec = importlib.util.spec_from_file_location("root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tiny_model(vocab_size)


def make_rows(seed: int = 0, lengths=(9, 5, 12, 7)) -> list[dict]:
    """Rows with a masked prompt and a trained answer, and every other row trained from its first token."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i, n in enumerate(lengths):
        ids = torch.randint(3, VOCAB, (n,), generator=g).tolist()
        prompt = n // 3 if i % 2 == 0 else 0
        rows.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return rows


def reference_sum(model, batch) -> torch.Tensor:
    out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels)
    return out.loss * batch.n_trained


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def per_row_losses(model, batch) -> list[float]:
    """Token-mean loss of each packed row, from the model's full logits over the packed sequence."""
    logits = model(**batch.model_inputs()).logits[0]
    ce = F.cross_entropy(logits[:-1], batch.labels[0, 1:], reduction="none", ignore_index=-100)
    starts = (batch.position_ids[0] == 0).nonzero().flatten().tolist() + [batch.input_ids.shape[1]]
    trained = batch.labels[0, 1:] != -100
    out = []
    for s, e in zip(starts[:-1], starts[1:], strict=True):
        m = trained[s : e - 1]
        if m.any():
            out.append((ce[s : e - 1][m].sum() / m.sum()).item())
    return out


def test_matches_reference_loss_times_trained_tokens():
    model = tiny_model(VOCAB)
    batch = pad_batch(make_rows(), pad_id=0)
    got, n = lm_loss_sum(model, batch)
    assert n == batch.n_trained == 24  # 6 + 4 + 8 + 6: a row's first token is never a target
    # Our head and loss sum in another order than transformers' mean: one forward's sums.
    assert_close_sums(got, reference_sum(model, batch), decoder_terms(model.config, batch.input_ids.numel()))


def test_packed_rows_have_the_same_loss_and_gradients_as_unpacked():
    rows = make_rows()
    model = tiny_model(VOCAB)
    packed = pack_batch([rows], pad_id=0, pad_to=40)
    # Each row's loss inside the pack equals its loss alone: attention and positions stay within a row.
    alone = [model(input_ids=torch.tensor([r["input_ids"]]), labels=torch.tensor([r["labels"]])).loss.item()
             for r in rows]
    # A packed row goes through matmuls of another shape (another blocking of the same sums): one forward.
    fwd = decoder_terms(model.config, packed.input_ids.numel())
    assert per_row_losses(model, packed) == pytest.approx(alone, rel=rel_tol(fwd))

    loss_p, n_p = lm_loss_sum(model, packed)
    loss_p.backward()
    g_packed = grads(model)
    model.zero_grad()
    loss_u, n_u = lm_loss_sum(model, pad_batch(rows, pad_id=0))
    loss_u.backward()
    assert n_p == n_u
    assert_close_sums(loss_p, loss_u, fwd)
    for name, g in grads(model).items():
        assert_close_sums(g_packed[name], g, backward_terms(model.config, packed.input_ids.numel()), msg=name)


def test_flattened_pack_gives_the_same_loss_as_separate_bins():
    # flatten=True is the flash_attention_2 layout; under SDPA it must still be exact.
    rows = make_rows()
    model = tiny_model(VOCAB)
    flat, n_flat = lm_loss_sum(model, pack_batch([rows[:2], rows[2:]], pad_id=0, flatten=True))
    split_batch = pack_batch([rows[:2], rows[2:]], pad_id=0)
    split, n_split = lm_loss_sum(model, split_batch)
    assert n_flat == n_split
    assert_close_sums(flat, split, decoder_terms(model.config, split_batch.input_ids.numel()))


def test_gradient_checkpointing_keeps_the_loss_and_gradients():
    rows = make_rows()
    model = tiny_model(VOCAB)
    batch = pack_batch([rows], pad_id=0)
    plain, _ = lm_loss_sum(model, batch)
    plain.backward()
    g_plain = grads(model)
    model.zero_grad()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    ckpt, _ = lm_loss_sum(model, batch)
    ckpt.backward()
    # Recomputing runs the same kernels on the same shapes: the same sums in the same order, bit for bit.
    assert torch.equal(ckpt, plain)
    for name, g in grads(model).items():
        assert torch.equal(g, g_plain[name]), name


def test_a_kv_cache_turns_off_packed_attention_which_is_why_batches_pass_use_cache_false():
    # transformers only reads packed position_ids when no cache is passed. If this stops failing
    # with use_cache=True, upstream changed and Batch.model_inputs' use_cache=False may be dropped.
    rows = make_rows()
    model = tiny_model(VOCAB)
    packed = pack_batch([rows], pad_id=0)
    leaky = {**packed.model_inputs(), "use_cache": True}
    right = model(**packed.model_inputs()).logits
    # Far beyond rounding: attention across rows changes the logits by a sizeable fraction of their scale.
    tol = rel_tol(decoder_terms(model.config, packed.input_ids.numel())) * right.abs().max().item()
    assert (model(**leaky).logits - right).abs().max().item() > 100 * tol


def test_chunked_head_with_recompute_matches_one_chunk():
    model = tiny_model(VOCAB)
    batch = pad_batch(make_rows(), pad_id=0)
    whole, _ = lm_loss_sum(model, batch, chunk_tokens=10_000)
    whole.backward()
    g_whole = grads(model)
    model.zero_grad()
    chunked, _ = lm_loss_sum(model, batch, chunk_tokens=5)
    chunked.backward()
    # Chunks sum the loss and the head's gradient over the tokens in another order, and the head's matmuls
    # run on other shapes: the sums of one forward and backward, reordered.
    tokens = batch.input_ids.numel()
    assert_close_sums(chunked, whole, decoder_terms(model.config, tokens))
    for name, g in grads(model).items():
        assert_close_sums(g, g_whole[name], backward_terms(model.config, tokens), msg=name)


def test_accumulation_by_the_steps_token_count_is_exact_and_per_micro_batch_mean_is_not():
    """The loop divides each micro-batch's loss sum by the step's trained tokens, sum(b.n_trained), counted on the host."""
    rows = make_rows(lengths=(6, 14, 4, 11))
    model = tiny_model(VOCAB)
    full = pad_batch(rows, pad_id=0)
    loss, _ = lm_loss_sum(model, full)
    (loss / full.n_trained).backward()
    g_full = grads(model)

    micro = [pad_batch([r], pad_id=0) for r in rows]
    total = sum(mb.n_trained for mb in micro)  # as train/loop.py's optimizer_step counts the step
    assert total == full.n_trained
    model.zero_grad()
    for mb in micro:
        loss, _ = lm_loss_sum(model, mb)
        (loss / total).backward()
    # One padded batch against four micro-batches: the same sums in another order and blocking.
    terms = backward_terms(model.config, full.input_ids.numel())
    for name, g in grads(model).items():
        assert_close_sums(g, g_full[name], terms, msg=name)

    # The naive way: mean per micro-batch, divided by the number of micro-batches: wrong far beyond rounding.
    model.zero_grad()
    for mb in micro:
        loss, n = lm_loss_sum(model, mb)
        (loss / n / len(micro)).backward()
    naive, want = grads(model)["model.embed_tokens.weight"], g_full["model.embed_tokens.weight"]
    assert (naive - want).abs().max().item() > 100 * rel_tol(terms) * want.abs().max().item()


def test_untied_head_and_lora_on_all_linear_layers_including_the_head():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = tiny_model(VOCAB)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]))
    assert fast_path_applies(peft_model)
    batch = pack_batch([make_rows()], pad_id=0)
    got, _ = lm_loss_sum(peft_model, batch)
    got.backward()
    g_fast = grads(peft_model)
    assert any("lm_head.lora_A" in n for n in g_fast)
    peft_model.zero_grad()
    logits = peft_model(**batch.model_inputs()).logits[0]
    ref = F.cross_entropy(logits[:-1], batch.labels[0, 1:], reduction="sum", ignore_index=-100)
    ref.backward()
    # The fused LoRA path sums in another order (its rank-4 sums are negligible next to the hidden size's).
    tokens = batch.input_ids.numel()
    assert_close_sums(got, ref, decoder_terms(model.config, tokens))
    for name, g in grads(peft_model).items():
        assert_close_sums(g_fast[name], g, backward_terms(model.config, tokens), msg=name)


def test_neftune_hook_on_embeddings_is_applied():
    model = tiny_model(VOCAB)
    batch = pad_batch(make_rows(), pad_id=0)
    clean, _ = lm_loss_sum(model, batch)
    noise = torch.randn(batch.input_ids.shape + (64,), generator=torch.Generator().manual_seed(1))
    handle = model.get_input_embeddings().register_forward_hook(lambda m, a, out: out + noise)
    try:
        noisy, _ = lm_loss_sum(model, batch)
        ref = reference_sum(model, batch)
    finally:
        handle.remove()
    terms = decoder_terms(model.config, batch.input_ids.numel())
    assert_close_sums(noisy, ref, terms)
    assert abs(noisy.item() - clean.item()) > 10 * rel_tol(terms) * abs(clean.item())  # the noise is in play


def test_prompt_tuning_falls_back_to_the_plain_forward():
    from peft import PromptTuningConfig, get_peft_model

    model = get_peft_model(tiny_model(VOCAB), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3))
    assert not fast_path_applies(model)
    rows = make_rows()
    batch = pad_batch(rows, pad_id=0)
    got, n = lm_loss_sum(model, batch)
    # peft's own loss also predicts each row's first token from the last virtual token; ours never does.
    labels = batch.labels.clone()
    labels[:, 0] = -100
    ref = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels).loss * n
    assert_close_sums(got, ref, decoder_terms(model.config, batch.input_ids.numel() + 3 * len(rows)))


def test_no_trained_tokens_gives_zero():
    model = tiny_model(VOCAB)
    batch = pad_batch([{"input_ids": [5, 6, 7], "labels": [-100, -100, -100]}], pad_id=0)
    loss, n = lm_loss_sum(model, batch)
    assert n == 0 and loss.item() == 0.0  # exact: a sum with every term masked out is 0, not a rounding
    loss.backward()  # a micro-batch with nothing to train still backpropagates (DDP needs every rank to)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
