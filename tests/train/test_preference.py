"""DPO losses (train/preference.py) against TRL 1.14's DPOTrainer (what axolotl 0.21.0 runs) on the same batch.

Token ids, masks, loss and every gradient are compared with TRL's own trainer built on the same tiny
model and strings, in float64: the two compute the same sums in another order (TRL runs the whole vocabulary's
log-softmax, newtune only the completion positions, in chunks), and in float64 the bound on what another
order can change (tests/tolerances.py: the length of the sums, carried through the loss by its own derivative,
`loss_tol`) is tight enough to catch a difference in any term of a loss (a label smoothing of 1e-3).
"""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch

from conftest import tiny_model
from newtune.config.preference import PAIR_LOSSES
from newtune.data.formats.preference.pair import Pair
from newtune.data.preference import tokenize_pairs
from newtune.train.preference import (
    PreferenceObjective,
    collate_pairs,
    completion_logps,
    pair_losses,
    reference_logps,
)
from tolerances import EPS, backward_terms, decoder_terms, rel_tol

PAIRS = [
    Pair("<|im_start|>user\nSay alpha<|im_end|>\n<|im_start|>assistant\n", "alpha alpha<|im_end|>", "no<|im_end|>"),
    Pair("<|im_start|>user\nSay beta<|im_end|>\n<|im_start|>assistant\n", "beta", "gamma delta epsilon"),  # EOS added
    Pair("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCount<|im_end|>\n<|im_start|>assistant\n",
         " ".join(["one two three"] * 12), "four<|im_end|>"),  # longer than MAX_LEN: cut keeping the start
    Pair("Plain prompt:", " yes", " no"),
]
MAX_LEN = 40
SMOOTHING = {"robust": 0.1, "exo_pair": 1e-3}


def trl_trainer(tok, model, ref_model, tmp_path, peft_config=None):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in PAIRS]
    args = DPOConfig(output_dir=str(tmp_path / "trl"), report_to="none", per_device_train_batch_size=len(rows),
                     max_length=MAX_LEN, use_cpu=True, bf16=False, beta=0.3)
    return DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=Dataset.from_list(rows),
                      processing_class=tok, peft_config=peft_config)


@pytest.fixture(scope="module")
def full_setup(smol_tok, tmp_path_factory):
    """Policy and a different frozen reference (full fine-tune), with TRL's trainer over them."""
    model = tiny_model(len(smol_tok), seed=1).double()
    ref = tiny_model(len(smol_tok), seed=2).double().eval().requires_grad_(False)
    return SimpleNamespace(model=model, ref=ref, trl=trl_trainer(smol_tok, model, ref, tmp_path_factory.mktemp("t")))


def trl_batch(trainer):
    return trainer.data_collator([trainer.train_dataset[i] for i in range(len(PAIRS))])


def assert_grads_close(got: dict, want: dict, config, extra_rel: float = 0.0) -> None:
    """Equal up to the reordering of the forward and backward sums over a MAX_LEN sequence (plus `extra_rel`),
    relative to each tensor's largest entry."""
    assert got.keys() == want.keys() and got
    for name, g in got.items():
        scale = want[name].abs().max().item()
        atol = (rel_tol(backward_terms(config, MAX_LEN), want[name].dtype) + extra_rel) * scale
        torch.testing.assert_close(g, want[name], rtol=0.0, atol=atol, msg=name)


def logp_errors(model, obj, smol_tok) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Policy and reference log-probs of the batch, each with the largest difference another summation
    order can make in it: a sequence's log-prob sums the log-softmax of MAX_LEN positions through the
    decoder, all of one sign, so its Σ|x| is its own size."""
    batch = collate_pairs(rows_of(smol_tok), obj.pad_id, MAX_LEN)
    with torch.no_grad():
        policy, ref = completion_logps(model, batch), reference_logps(model, obj.ref_model, batch)
    rel = rel_tol(decoder_terms(model.config, MAX_LEN), policy.dtype)
    return policy, ref, rel * policy.abs(), rel * ref.abs(), batch


def loss_tol(model, obj, smol_tok) -> float:
    """How far two fp32 evaluations of the batch's mean loss may differ: each log-prob's error (logp_errors)
    times the loss's derivative with respect to it (first order), both evaluations erring, plus the
    rounding of the loss itself."""
    policy, ref, d_policy, d_ref, batch = logp_errors(model, obj, smol_tok)
    policy, ref = policy.clone().requires_grad_(True), ref.clone().requires_grad_(True)
    counts = batch.completion_mask.sum(1).to(policy.dtype)
    loss = pair_losses(obj.loss_types, obj.weights, obj.beta, obj.smoothing, policy, ref, counts).mean()
    g_policy, g_ref = torch.autograd.grad(loss, (policy, ref))
    first_order = (g_policy.abs() * d_policy).sum() + (g_ref.abs() * d_ref).sum()
    return 2 * first_order.item() + torch.finfo(loss.dtype).eps * abs(loss.item())


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def objective(ref_model, loss_types=("sigmoid",), weights=None, smoothing=None, beta=0.3, rl="dpo"):
    pref = SimpleNamespace(dpo_loss_type=list(loss_types), dpo_loss_weights=weights, beta=beta,
                           dpo_label_smoothing=smoothing)
    return PreferenceObjective(rl, pref, pad_id=2, max_length=MAX_LEN, ref_model=ref_model)


def ours_loss_and_grads(model, obj, smol_tok):
    batch = collate_pairs(rows_of(smol_tok), obj.pad_id, MAX_LEN)
    model.zero_grad(set_to_none=True)
    loss_sum, n = obj.loss_sum(model, batch)
    loss = loss_sum / n
    loss.backward()
    return loss.detach(), grads(model)


def rows_of(tok):
    cols = tokenize_pairs(PAIRS, tok)
    return [{k: cols[k][i] for k in cols} for i in range(len(PAIRS))]


def trl_loss_and_grads(trainer, model):
    model.zero_grad(set_to_none=True)
    loss = trainer.compute_loss(model, trl_batch(trainer))
    loss.backward()
    return loss.detach(), grads(model)


def test_token_ids_equal_trl(full_setup, smol_tok):
    cols = tokenize_pairs(PAIRS, smol_tok)
    ds = full_setup.trl.train_dataset
    for k in ("prompt_ids", "chosen_ids", "rejected_ids"):
        assert cols[k] == ds[k]
    assert cols["chosen_ids"][1][-1] == smol_tok.eos_token_id  # TRL appends EOS where it is missing


def test_collated_batch_equals_trl(full_setup, smol_tok):
    ours = collate_pairs(rows_of(smol_tok), smol_tok.pad_token_id, MAX_LEN)
    theirs = trl_batch(full_setup.trl)
    assert torch.equal(ours.input_ids, theirs["input_ids"])
    assert torch.equal(ours.attention_mask, theirs["attention_mask"])
    assert torch.equal(ours.completion_mask, theirs["completion_mask"])
    assert ours.input_ids.shape[1] == MAX_LEN  # the long pair was cut, keeping its start
    assert ours.n_trained == len(PAIRS)


@pytest.mark.parametrize("loss_type", PAIR_LOSSES)
def test_each_loss_and_its_gradients_equal_trl(full_setup, smol_tok, loss_type):
    trainer = full_setup.trl
    trainer.loss_types, trainer.loss_weights = [loss_type], [1.0]
    trainer.label_smoothing = SMOOTHING.get(loss_type, 0.0)
    ref_loss, ref_grads = trl_loss_and_grads(trainer, full_setup.model)
    obj = objective(full_setup.ref, [loss_type], smoothing=SMOOTHING.get(loss_type))
    loss, got = ours_loss_and_grads(full_setup.model, obj, smol_tok)
    tol, grad_rel = loss_tol(full_setup.model, obj, smol_tok), 0.0
    if loss_type == "exo_pair":
        # TRL takes log(1 − ε) and log(ε) of a float32 tensor: an error δ of at most eps32 × their sizes. The
        # loss weighs them by q ≤ 1; its derivative in each pair's z is q(1 − q)(z − log((1 − ε)/ε)), which δ
        # moves by q(1 − q)δ: relatively δ / |z − log((1 − ε)/ε)|.
        e = SMOOTHING["exo_pair"]
        delta = EPS * (abs(math.log(e)) + abs(math.log1p(-e)))
        policy, ref, *_ = logp_errors(full_setup.model, obj, smol_tok)
        ratio = policy - ref
        z = obj.beta * (ratio[: len(PAIRS)] - ratio[len(PAIRS):])
        tol += delta
        grad_rel = delta / (z - math.log((1 - e) / e)).abs().min().item()
    torch.testing.assert_close(loss, ref_loss, rtol=0, atol=tol)
    assert_grads_close(got, ref_grads, full_setup.model.config, grad_rel)


def test_mixed_losses_with_weights_equal_trl(full_setup, smol_tok):
    trainer = full_setup.trl
    trainer.loss_types, trainer.loss_weights, trainer.label_smoothing = ["sigmoid", "ipo", "hinge"], [1.0, 0.5, 2.0], 0.0
    ref_loss, ref_grads = trl_loss_and_grads(trainer, full_setup.model)
    obj = objective(full_setup.ref, ["sigmoid", "ipo", "hinge"], weights=[1.0, 0.5, 2.0])
    loss, got = ours_loss_and_grads(full_setup.model, obj, smol_tok)
    torch.testing.assert_close(loss, ref_loss, rtol=0, atol=loss_tol(full_setup.model, obj, smol_tok))
    assert_grads_close(got, ref_grads, full_setup.model.config)


def test_rl_ipo_is_the_ipo_loss(full_setup, smol_tok):
    ipo, _ = ours_loss_and_grads(full_setup.model, objective(full_setup.ref, rl="ipo"), smol_tok)
    explicit, _ = ours_loss_and_grads(full_setup.model, objective(full_setup.ref, ["ipo"]), smol_tok)
    sigmoid, _ = ours_loss_and_grads(full_setup.model, objective(full_setup.ref, ["sigmoid"]), smol_tok)
    assert ipo == explicit != sigmoid


def lora_config():
    from peft import LoraConfig

    return LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])


def test_lora_reference_is_the_adapter_switched_off_like_trl(smol_tok, tmp_path):
    """axolotl hands TRL the base model and a peft_config: TRL's reference is the adapter switched off."""
    trainer = trl_trainer(smol_tok, tiny_model(len(smol_tok), seed=1).double(), None, tmp_path, peft_config=lora_config())
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float64}
    torch.manual_seed(6)
    with torch.no_grad():  # move the adapter away from the identity, so the policy differs from its reference
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    ref_loss, ref_grads = trl_loss_and_grads(trainer, trainer.model)
    obj = objective(None)
    loss, got = ours_loss_and_grads(trainer.model, obj, smol_tok)
    tol = loss_tol(trainer.model, obj, smol_tok)
    assert abs(loss.item() - math.log(2)) > 10 * tol  # the policy really differs from its reference
    torch.testing.assert_close(loss, ref_loss, rtol=0, atol=tol)
    assert all("lora_" in n for n in got)
    assert_grads_close(got, ref_grads, trainer.model.config)


def test_reference_equal_to_policy_gives_log_2(smol_tok):
    from peft import get_peft_model

    # Policy and reference run the same sums on the same weights (B = 0 adds exact zeros): equal log-probs,
    # so the loss is -logsigmoid(0) = log 2 up to the rounding of that one value.
    lora = get_peft_model(tiny_model(len(smol_tok), seed=1), lora_config())  # B = 0: the adapter starts as the identity
    loss, _ = ours_loss_and_grads(lora, objective(None), smol_tok)
    assert loss.item() == pytest.approx(math.log(2), rel=EPS)
    full = tiny_model(len(smol_tok), seed=4)
    loss, _ = ours_loss_and_grads(full, objective(copy.deepcopy(full).requires_grad_(False)), smol_tok)
    assert loss.item() == pytest.approx(math.log(2), rel=EPS)


def test_metrics_use_trls_names_and_values(full_setup, smol_tok):
    trainer = full_setup.trl
    trainer.loss_types, trainer.loss_weights, trainer.label_smoothing = ["sigmoid"], [1.0], 0.0
    trainer._metrics["train"].clear()
    full_setup.model.train()
    trl_loss_and_grads(trainer, full_setup.model)
    obj = objective(full_setup.ref)
    ours_loss_and_grads(full_setup.model, obj, smol_tok)
    got = obj.take_metrics()
    # Means over the pairs of the log-probs (logps/*) or of beta × (policy − reference) (rewards/*): each
    # mean differs by at most the mean of its terms' errors, both evaluations erring.
    policy, ref, d_policy, d_ref, _ = logp_errors(full_setup.model, obj, smol_tok)
    n = len(PAIRS)
    d_logps, d_rewards = 2 * d_policy.view(2, n).mean(1), 2 * obj.beta * (d_policy + d_ref).view(2, n).mean(1)
    margins = obj.beta * ((policy - ref)[:n] - (policy - ref)[n:])
    assert (margins.abs() > 2 * obj.beta * (d_policy + d_ref).view(2, n).sum(0)).all()  # no near-tie: accuracy exact
    tols = {"logps/chosen": d_logps[0], "logps/rejected": d_logps[1], "rewards/chosen": d_rewards[0],
            "rewards/rejected": d_rewards[1], "rewards/margins": d_rewards.sum(), "rewards/accuracies": 0.0}
    for name, value in got.items():
        want = trainer._metrics["train"][name][-1]
        assert value == pytest.approx(want, rel=0, abs=float(tols[name]) + torch.finfo(policy.dtype).eps * abs(want)), name
    assert set(got) == {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                        "logps/chosen", "logps/rejected"}
    assert obj.take_metrics() == {}  # taken: the next log starts afresh


def test_micro_batches_sum_to_the_big_batch(full_setup, smol_tok):
    """The step's loss is a mean over pairs: per-pair loss sums over micro-batches / all pairs = one batch."""
    model, obj = full_setup.model, objective(full_setup.ref, ["sigmoid", "ipo"])
    rows = rows_of(smol_tok)
    whole, whole_grads = ours_loss_and_grads(model, obj, smol_tok)
    model.zero_grad(set_to_none=True)
    total = 0.0
    for part in (rows[:1], rows[1:3], rows[3:]):
        loss_sum, _ = obj.loss_sum(model, collate_pairs(part, 2, MAX_LEN))
        (loss_sum / len(rows)).backward()
        total += loss_sum.item() / len(rows)
    # Other batch shapes (padding widths): the same sums in another order and blocking.
    assert total == pytest.approx(whole.item(), rel=0, abs=loss_tol(model, obj, smol_tok))
    assert_grads_close(grads(model), whole_grads, model.config)
