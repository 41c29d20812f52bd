"""ORPO and SimPO (train/reference_free.py) against TRL 1.14's ORPOTrainer and CPOTrainer(loss_type="simpo").

TRL's own trainers, built on the same tiny float64 model, are handed the very token ids newtune collates
(DPO's tokenization: TRL's ORPO and CPO trainers tokenize prompt+answer jointly, which newtune's dataset types
do not), and their loss and every gradient are compared with newtune's. The tolerances follow from the
computation (tests/tolerances.py): the reordered float64 sums, plus, for ORPO, TRL's cast of the averaged
log-probs to float32 before the odds ratio.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from conftest import tiny_model
from newtune.train.preference import collate_pairs
from newtune.train.reference_free import ReferenceFreeObjective
from tolerances import EPS, backward_terms, decoder_terms, rel_tol
from train.test_preference import MAX_LEN, PAIRS, grads, lora_config, rows_of

LAMBDA, BETA, GAMMA = 0.3, 2.0, 0.7


def trl_trainer(kind, tok, model, tmp_path, cpo_alpha=1.0, smoothing=0.0):
    from datasets import Dataset

    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in PAIRS]
    common = dict(output_dir=str(tmp_path / kind), report_to="none", per_device_train_batch_size=len(rows),
                  max_length=MAX_LEN, use_cpu=True, bf16=False)
    if kind == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        args, cls = ORPOConfig(**common, beta=LAMBDA), ORPOTrainer
    else:
        from trl.experimental.cpo import CPOConfig, CPOTrainer

        args, cls = CPOConfig(**common, beta=BETA, loss_type="simpo", simpo_gamma=GAMMA, cpo_alpha=cpo_alpha,
                              label_smoothing=smoothing), CPOTrainer
    return cls(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)


def trl_inputs(batch):
    """newtune's collated pairs in the layout TRL's ORPO/CPO trainers take (labels −100 off the completion)."""
    n = batch.input_ids.shape[0] // 2
    labels = torch.where(batch.completion_mask == 1, batch.input_ids, -100)
    out = {}
    for side, rows in (("chosen", slice(0, n)), ("rejected", slice(n, None))):
        out[f"{side}_input_ids"] = batch.input_ids[rows]
        out[f"{side}_attention_mask"] = batch.attention_mask[rows]
        out[f"{side}_labels"] = labels[rows]
    return out


def objective(rl, cpo_alpha=None, weight=None):
    pref = SimpleNamespace(beta=BETA, orpo_weight=LAMBDA if weight is None else weight, simpo_gamma=GAMMA,
                           nll_weight=1.0 if cpo_alpha is None else cpo_alpha)
    return ReferenceFreeObjective(rl, pref, pad_id=2, max_length=MAX_LEN)


def batch_of(tok, rows=None):
    return collate_pairs(rows if rows is not None else rows_of(tok), 2, MAX_LEN)


def ours(model, obj, batch):
    model.zero_grad(set_to_none=True)
    loss_sum, n = obj.loss_sum(model, batch)
    (loss_sum / n).backward()
    return (loss_sum / n).detach(), grads(model)


def theirs(trainer, model, batch):
    model.zero_grad(set_to_none=True)
    loss = trainer.compute_loss(model, trl_inputs(batch))
    loss.backward()
    return loss.detach(), grads(model)


@pytest.fixture(scope="module")
def model(smol_tok):
    return tiny_model(len(smol_tok), seed=1).double()


def sum_error(model, obj, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(avg, nll, their errors): each row's log-prob sums MAX_LEN log-softmax terms of one sign through the
    decoder, so another summation order moves it by at most rel × its size (tests/tolerances.py)."""
    with torch.no_grad():
        avg, nll = obj.logps(model, batch)
    rel = rel_tol(decoder_terms(model.config, MAX_LEN), torch.float64)
    return avg, nll, rel * avg.abs(), rel * nll.abs()


def float32_odds_error(avg: torch.Tensor) -> torch.Tensor:
    """Per pair, how far TRL's float32 log odds may be from the exact ones: the two inputs rounded to float32
    (eps/2 relative, moving log1mexp by |a|/(1 − e^a) each) and about 8 float32 roundings of eps/2 along
    the subtractions, log1mexp and log σ, each of at most the largest intermediate's size."""
    chosen, rejected = avg.chunk(2)
    sens = chosen.abs() / -torch.expm1(chosen) + rejected.abs() / -torch.expm1(rejected)
    l1m = lambda x: torch.log(-torch.expm1(x)).abs()  # noqa: E731
    size = chosen.abs() + rejected.abs() + l1m(chosen) + l1m(rejected)
    return EPS / 2 * sens + 8 * EPS / 2 * size


def loss_tol(model, obj, batch) -> float:
    """First order: each averaged log-prob's and the NLL's error times the loss's derivative in it, both
    evaluations erring; plus, for ORPO, TRL's float32 odds ratio (λ × its error, σ' ≤ 1)."""
    avg, nll, d_avg, d_nll = sum_error(model, obj, batch)
    avg_, nll_ = avg.clone().requires_grad_(True), nll.clone().requires_grad_(True)
    if obj.rl == "orpo":
        from newtune.train.reference_free import orpo_terms

        loss = nll_ - obj.beta * orpo_terms(avg_)[0].mean()
    else:
        from newtune.train.reference_free import simpo_losses

        loss = simpo_losses(avg_, obj.beta, obj.gamma).mean() + obj.weight * nll_
    g_avg, g_nll = torch.autograd.grad(loss, (avg_, nll_))
    tol = 2 * ((g_avg.abs() * d_avg).sum() + g_nll.abs() * d_nll).item() + torch.finfo(loss.dtype).eps * abs(loss.item())
    if obj.rl == "orpo":
        tol += obj.beta * float32_odds_error(avg).mean().item()
    return tol


def orpo_float32_grad_atol(model, obj, batch) -> dict[str, float]:
    """TRL's ORPO backward runs the odds-ratio term's derivatives in float32: each row's weight w_r in
    λ·mean log σ moves by at most about 8·eps/2 relative (the same roundings as the forward), so a gradient
    entry moves by at most 4·eps·Σ_r |w_r|·|∂a_r/∂θ| (computed here, one backward per row)."""
    from newtune.train.reference_free import orpo_terms

    n_rows = batch.input_ids.shape[0]
    avg = obj.logps(model, batch)[0]
    weights = torch.autograd.grad(obj.beta * orpo_terms(avg)[0].mean(), avg, retain_graph=True)[0].abs()
    bound: dict[str, torch.Tensor] = {}
    for r in range(n_rows):
        model.zero_grad(set_to_none=True)
        avg[r].backward(retain_graph=r < n_rows - 1)
        for name, g in grads(model).items():
            bound[name] = bound.get(name, 0) + weights[r] * g.abs()
    model.zero_grad(set_to_none=True)
    return {name: 4 * EPS * b.max().item() for name, b in bound.items()}


def assert_grads_close(got, want, config, extra: dict[str, float] | None = None) -> None:
    assert got.keys() == want.keys() and got
    for name, g in got.items():
        atol = rel_tol(backward_terms(config, MAX_LEN), torch.float64) * want[name].abs().max().item()
        torch.testing.assert_close(g, want[name], rtol=0.0, atol=atol + (extra or {}).get(name, 0.0), msg=name)


def test_orpo_loss_and_gradients_equal_trl(model, smol_tok, tmp_path):
    trainer, batch, obj = trl_trainer("orpo", smol_tok, model, tmp_path), batch_of(smol_tok), objective("orpo")
    want, want_grads = theirs(trainer, model, batch)
    got, got_grads = ours(model, obj, batch)
    torch.testing.assert_close(got, want, rtol=0, atol=loss_tol(model, obj, batch))
    assert_grads_close(got_grads, want_grads, model.config, orpo_float32_grad_atol(model, obj, batch))


@pytest.mark.parametrize("cpo_alpha", [1.0, 0.0, 0.4])
def test_simpo_loss_and_gradients_equal_trl(model, smol_tok, tmp_path, cpo_alpha):
    trainer = trl_trainer("simpo", smol_tok, model, tmp_path, cpo_alpha=cpo_alpha)
    batch, obj = batch_of(smol_tok), objective("simpo", cpo_alpha=cpo_alpha)
    want, want_grads = theirs(trainer, model, batch)
    got, got_grads = ours(model, obj, batch)
    torch.testing.assert_close(got, want, rtol=0, atol=loss_tol(model, obj, batch))
    assert_grads_close(got_grads, want_grads, model.config)


def test_simpo_label_smoothing_is_trls_formula(model, smol_tok, tmp_path):
    trainer = trl_trainer("simpo", smol_tok, model, tmp_path, smoothing=0.2)
    batch, obj = batch_of(smol_tok), objective("simpo")
    obj.smoothing = 0.2
    want, _ = theirs(trainer, model, batch)
    got, _ = ours(model, obj, batch)
    torch.testing.assert_close(got, want, rtol=0, atol=loss_tol(model, obj, batch) * 2)


@pytest.mark.parametrize("rl", ["orpo", "simpo"])
def test_a_small_change_in_a_term_is_caught(model, smol_tok, tmp_path, rl):
    """The tolerance is far below what a 1% change in any one term (the weight, γ, the NLL) moves the loss."""
    trainer = trl_trainer(rl, smol_tok, model, tmp_path)
    batch = batch_of(smol_tok)
    want, _ = theirs(trainer, model, batch)
    tol = loss_tol(model, objective(rl), batch)
    mutants = [objective(rl, weight=LAMBDA * 1.01)] if rl == "orpo" else [objective(rl, cpo_alpha=1.01)]
    if rl == "simpo":
        gamma = objective(rl)
        gamma.gamma = GAMMA * 1.01
        mutants.append(gamma)
    for mutant in mutants:
        got, _ = ours(model, mutant, batch)
        assert abs(got.item() - want.item()) > 10 * tol


def test_orpo_nll_covers_prompt_and_completion_as_trl(model, smol_tok):
    """TRL's ORPO NLL is over the chosen rows' prompt and completion: changing it to completion-only is caught."""
    batch, obj = batch_of(smol_tok), objective("orpo")
    _, nll = obj.logps(model, batch)
    simpo_nll = objective("simpo").logps(model, batch)[1]  # completion-only, the CPO NLL
    assert abs(nll.item() - simpo_nll.item()) > 1e-3


def test_lora_orpo_and_simpo_train_only_the_adapter(smol_tok, tmp_path):
    from peft import get_peft_model

    lora = get_peft_model(tiny_model(len(smol_tok), seed=1).double(), lora_config())
    torch.manual_seed(6)
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    for rl in ("orpo", "simpo"):
        trainer = trl_trainer(rl, smol_tok, lora, tmp_path)
        batch, obj = batch_of(smol_tok), objective(rl)
        want, want_grads = theirs(trainer, lora, batch)
        got, got_grads = ours(lora, obj, batch)
        torch.testing.assert_close(got, want, rtol=0, atol=loss_tol(lora, obj, batch))
        assert got_grads and all("lora_" in n for n in got_grads)
        extra = orpo_float32_grad_atol(lora, obj, batch) if rl == "orpo" else None
        assert_grads_close(got_grads, want_grads, lora.config, extra)


@pytest.mark.parametrize("rl", ["orpo", "simpo"])
def test_metrics_use_trls_names_and_values(model, smol_tok, tmp_path, rl):
    trainer, batch = trl_trainer(rl, smol_tok, model, tmp_path), batch_of(smol_tok)
    trainer._stored_metrics["train"].clear()
    theirs(trainer, model, batch)
    obj = objective(rl)
    ours(model, obj, batch)
    got = obj.take_metrics()
    trl = {k: v[-1] for k, v in trainer._stored_metrics["train"].items() if not k.startswith("logits/")}
    assert set(got) == set(trl)  # TRL's names, less logits/* (the mean logit over the vocabulary)
    avg, nll, d_avg, d_nll = sum_error(model, obj, batch)
    scale = 2 * (d_avg.max() + d_nll).item() * max(obj.beta, 1) + 4 * EPS * (avg.abs().max().item() + 1)
    for name, value in got.items():  # TRL's ORPO takes its metrics in float32: eps32-relative roundings
        tol = scale * (10 if name.startswith("log_odds") else 1) + 4 * EPS * abs(trl[name])
        assert value == pytest.approx(trl[name], rel=0, abs=tol), name
    assert obj.take_metrics() == {}


@pytest.mark.parametrize("rl", ["orpo", "simpo"])
def test_micro_batches_match_trls_accumulation(model, smol_tok, tmp_path, rl):
    """Pair terms: micro-batch sums / all pairs = the big batch exactly (cpo_alpha 0). With the NLL (TRL's
    token mean per micro-batch), equal micro-batches give TRL's accumulation: the mean of their losses."""
    rows = rows_of(smol_tok)
    parts = (rows[:2], rows[2:])
    if rl == "simpo":
        obj = objective("simpo", cpo_alpha=0.0)
        whole, whole_grads = ours(model, obj, batch_of(smol_tok))
        model.zero_grad(set_to_none=True)
        total = 0.0
        for part in (rows[:1], rows[1:3], rows[3:]):
            loss_sum, _ = obj.loss_sum(model, batch_of(smol_tok, part))
            (loss_sum / len(rows)).backward()
            total += loss_sum.item() / len(rows)
        assert total == pytest.approx(whole.item(), rel=0, abs=loss_tol(model, obj, batch_of(smol_tok)))
        assert_grads_close(grads(model), whole_grads, model.config)
    trainer, obj = trl_trainer(rl, smol_tok, model, tmp_path), objective(rl)
    want = sum(theirs(trainer, model, batch_of(smol_tok, p))[0].item() for p in parts) / len(parts)
    model.zero_grad(set_to_none=True)
    total, tol = 0.0, 0.0
    for part in parts:
        loss_sum, _ = obj.loss_sum(model, batch_of(smol_tok, part))
        total += loss_sum.item() / len(rows)
        tol += loss_tol(model, obj, batch_of(smol_tok, part)) / len(parts)
    assert total == pytest.approx(want, rel=0, abs=tol)
