"""optimizer: muon, as axolotl 0.21.0 runs it: Muon on the matrices, AdamW on embeddings and head, nothing on 1-D."""

from __future__ import annotations

import math

import torch
from tiny_run import losses, tiny_run_fixture  # noqa: F401 (the tiny_run fixture)

from conftest import tiny_model
from newtune.train.muon import Muon, muon_groups, orthogonalised
from newtune.train.optim import build_optimizer

BF16_STEP = 2.0**-8  # bf16 keeps 8 significant bits: one rounding is at most 2^-8 relative (2^-9, doubled for safety)


def test_muon_splits_the_parameters_as_axolotls_factory(tiny_run):
    model = tiny_model(300)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    cfg, _ = tiny_run(adapter=None, optimizer="muon", weight_decay=0.01)
    opt = build_optimizer(model, cfg.train, "cpu")
    muon, adamw = (next(g for g in opt.param_groups if g["use_muon"] is flag) for flag in (True, False))
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in adamw["params"]} == {"model.embed_tokens.weight", "lm_head.weight"}
    assert {names[id(p)] for p in muon["params"]} == {n for n, p in model.named_parameters() if p.ndim == 2} - {
        "model.embed_tokens.weight", "lm_head.weight"}
    assert muon_groups(model)[1] == sum(1 for p in model.parameters() if p.ndim < 2)  # norms: in no group
    assert adamw["adamw_betas"] == (0.95, 0.95) and muon["wd"] == 0.01  # axolotl's betas unless both are set
    set_betas, _ = tiny_run(adapter=None, optimizer="muon", adam_beta1=0.8, adam_beta2=0.9)
    assert build_optimizer(model, set_betas.train, "cpu").param_groups[0]["adamw_betas"] == (0.8, 0.9)


def test_muon_step_matches_torch_muon_with_adamw_matched_rms():
    torch.manual_seed(0)
    w = torch.randn(24, 40)
    grads = [torch.randn(24, 40) for _ in range(3)]
    ours, theirs = w.clone().requires_grad_(), w.clone().requires_grad_()
    mine = Muon([{"params": [ours], "use_muon": True}], lr=0.02, weight_decay=0.1, betas=(0.95, 0.95), eps=1e-8)
    ref = torch.optim.Muon([theirs], lr=0.02, weight_decay=0.1, momentum=0.95, nesterov=True, ns_steps=5,
                           adjust_lr_fn="match_rms_adamw")
    for g in grads:
        ours.grad, theirs.grad = g.clone(), g.clone()
        mine.step()
        ref.step()
    # The same algorithm; torch's momentum is an average ((1 - 0.95) × axolotl's sum), which the Newton-Schulz
    # normalisation removes. Both run it in bf16 with other roundings: 5 steps × 3 rounded products, each at most
    # BF16_STEP relative to the update's scale (its largest entry), for each of the 3 updates.
    scale = 0.02 * 0.2 * math.sqrt(40) * orthogonalised(grads[0], 5).abs().max().item()
    assert (ours - theirs).abs().max().item() <= 3 * 15 * BF16_STEP * scale
    assert not torch.equal(ours, w)
    s = torch.linalg.svdvals(orthogonalised(grads[0], 5).float())
    assert s.min() > 0.5 and s.max() < 1.5  # about U·Vᵀ: singular values near 1 (Muon's documented range)


def test_muon_adamw_part_is_adamw():
    torch.manual_seed(1)
    w = torch.randn(50, 8)
    ours, theirs = w.clone().requires_grad_(), w.clone().requires_grad_()
    # eps 0: Moonlight divides by (sqrt(v) + eps) / sqrt(1 - beta2^t), torch by sqrt(v / (1 - beta2^t)) + eps,
    # the same without eps
    mine = Muon([{"params": [ours], "use_muon": False}], lr=0.01, weight_decay=0.1, betas=(0.95, 0.9), eps=0.0)
    ref = torch.optim.AdamW([theirs], lr=0.01, weight_decay=0.1, betas=(0.95, 0.9), eps=0.0)
    for _ in range(3):
        g = torch.randn(50, 8)
        ours.grad, theirs.grad = g.clone(), g.clone()
        mine.step()
        ref.step()
    moved = (ours - w).abs().max().item()
    assert moved > 0
    # the same operations in another order: about 8 float32 roundings per step, relative to |w| and the step
    assert (ours - theirs).abs().max().item() <= 3 * 8 * torch.finfo().eps * (w.abs().max().item() + moved)


def test_muon_trains_a_lora_run(tiny_run):
    cfg, console = tiny_run(out="muon", optimizer="muon", max_steps=3, learning_rate=0.02)
    from newtune.train.loop import run_training

    model = run_training(cfg, console).model
    adamw, console = tiny_run(out="adamw", max_steps=3, learning_rate=0.02)
    run_training(adamw, console)
    assert losses(cfg.train.output_dir)[0] == losses(adamw.train.output_dir)[0]  # the same start
    assert losses(cfg.train.output_dir)[1:] != losses(adamw.train.output_dir)[1:]  # another update rule
    assert all(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)  # B starts at 0: Muon moved it
