"""Training keys of axolotl configs: unfrozen_parameters, lora_target_parameters, activation_offloading."""

from __future__ import annotations

import torch
from tiny_run import losses, tiny_run_fixture  # noqa: F401 (the tiny_run fixture)

from newtune.train.loop import run_training


def initial_state(cfg):
    from accelerate.utils import set_seed

    from newtune.data.tokenizer import tokenizer_for
    from newtune.model.load import load_model

    set_seed(cfg.train.seed)
    model = load_model(cfg.model, tokenizer_for(cfg.model), dtype=torch.float32)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_unfrozen_parameters_train_only_the_matching_parameters_and_rows(tiny_run):
    cfg, console = tiny_run(adapter=None, learning_rate=1e-3, max_steps=2, unfrozen_parameters=[
        "model.layers.1.mlp.down_proj.weight", "^model.norm.weight$", r"model.embed_tokens.weight$[0:100]"])
    before = initial_state(cfg)
    model = run_training(cfg, console).model
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed == {"model.layers.1.mlp.down_proj.weight", "model.norm.weight", "model.embed_tokens.weight"}
    emb = model.get_input_embeddings().weight.detach()
    assert torch.equal(emb[100:], before["model.embed_tokens.weight"][100:])  # rows outside the range stay
    assert not torch.equal(emb[:100], before["model.embed_tokens.weight"][:100])


def test_lora_target_parameters_adapt_raw_parameters(tiny_run):
    cfg, console = tiny_run(lora_target_linear=None, lora_target_parameters=["mlp.down_proj.weight"], max_steps=2)
    model = run_training(cfg, console).model
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable and all("down_proj" in n and "lora_" in n for n in trainable)
    assert len(trainable) == 2 * 2  # lora_A and lora_B for each of the 2 layers


def test_activation_offloading_keeps_saved_tensors_on_cpu_with_the_same_losses(tiny_run, monkeypatch):
    packed = []
    real = torch.autograd.graph.save_on_cpu

    def counting(pin_memory=False, device_type="cuda"):
        ctx = real(pin_memory, device_type)
        pack = ctx.pack_hook

        def counted(tensor):
            packed.append(tensor.shape)
            return pack(tensor)

        ctx.pack_hook = counted
        return ctx

    monkeypatch.setattr(torch.autograd.graph, "save_on_cpu", counting)
    plain, console = tiny_run(out="plain", gradient_checkpointing=True, max_steps=2)
    run_training(plain, console)
    assert not packed
    offloaded, console = tiny_run(out="offloaded", gradient_checkpointing=True, activation_offloading=True, max_steps=2)
    run_training(offloaded, console)
    assert packed  # saved tensors went through save_on_cpu
    assert losses(offloaded.train.output_dir) == losses(plain.train.output_dir)


def test_data_seed_sets_the_batch_order_apart_from_the_seed(tiny_run):
    base, console = tiny_run(out="base")
    run_training(base, console)
    same, console = tiny_run(out="same", data_seed=3)  # tiny_run's seed is 3
    run_training(same, console)
    other, console = tiny_run(out="other", data_seed=11)
    run_training(other, console)
    assert losses(same.train.output_dir) == losses(base.train.output_dir)
    assert losses(other.train.output_dir) != losses(base.train.output_dir)
    assert losses(other.train.output_dir)[0] != losses(base.train.output_dir)[0]  # another first batch


def test_tiled_mlp_trains_with_the_untiled_losses(tiny_run):
    from tolerances import training_rel_tol

    plain, console = tiny_run(out="plain", max_steps=2)
    run_training(plain, console)
    tiled, console = tiny_run(out="tiled", max_steps=2, tiled_mlp=True, tiled_mlp_num_shards=3)
    model = run_training(tiled, console).model
    mlps = [m for n, m in model.named_modules() if n.endswith(".mlp")]
    assert mlps and all("forward" in vars(m) and m._newtune_shards == 3 for m in mlps)
    # the same sums in another order (the MLP weight gradients in 3 slices): float32 rounding, growing per step
    tol = training_rel_tol(model.config, 64, 2)
    for a, b in zip(losses(tiled.train.output_dir), losses(plain.train.output_dir), strict=True):
        assert abs(a - b) <= tol * abs(b)
