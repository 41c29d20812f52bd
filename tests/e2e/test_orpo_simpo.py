"""`rl: orpo` and `rl: simpo` end to end: LoRA and full training with TRL's metrics, no reference model,
accumulation, kill -9 resume, preprocess --debug, config errors from the CLI."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
import yaml

from e2e.test_dpo import assert_sigkill_resume_reproduces, dpo_keys, newtune, records, write_config
from tolerances import EPS, training_rel_tol

ORPO_METRICS = {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
                "logps/rejected", "nll_loss", "log_odds_ratio", "log_odds_chosen"}
SIMPO_METRICS = ORPO_METRICS - {"log_odds_ratio", "log_odds_chosen"}
METHOD = {"orpo": {"rl": "orpo", "orpo_alpha": 0.2}, "simpo": {"rl": "simpo", "rl_beta": 2.0, "simpo_gamma": 0.5}}


def train(tmp_path: Path, model_dir: Path, rl: str, **keys):
    from rich.console import Console

    from newtune.load import load_config
    from newtune.train.loop import run_training

    cfg = load_config(None, raw=dpo_keys(tmp_path, model_dir, **{**METHOD[rl], **keys}))
    return run_training(cfg, Console(file=io.StringIO(), width=120))


@pytest.mark.parametrize("rl", ["orpo", "simpo"])
def test_lora_run_logs_trls_metrics_and_learns(tmp_path, tiny_model_dir, rl):
    result = train(tmp_path, tiny_model_dir, rl, num_epochs=4, val_set_size=2)
    logged = [r for r in records(tmp_path / "out") if "loss" in r]
    names = ORPO_METRICS if rl == "orpo" else SIMPO_METRICS
    assert names <= set(logged[-1]) and not any(k.startswith("logits/") for k in logged[-1])
    assert logged[-1]["loss"] < logged[0]["loss"] and logged[-1]["rewards/margins"] > logged[0]["rewards/margins"]
    evals = [r for r in records(tmp_path / "out") if "eval_loss" in r]
    assert evals and {f"eval_{n}" for n in names} <= set(evals[-1])
    assert (tmp_path / "out" / "adapter_model.safetensors").exists() and result.steps == 12


@pytest.mark.parametrize("rl", ["orpo", "simpo"])
def test_full_fine_tune_keeps_no_reference_model(tmp_path, tiny_model_dir, rl, monkeypatch):
    from transformers import AutoModelForCausalLM

    import newtune.train.preference as P

    made = []
    real = P.frozen_reference
    monkeypatch.setattr(P, "frozen_reference", lambda *a: made.append(real(*a)) or made[-1])
    result = train(tmp_path, tiny_model_dir, rl, adapter=None, learning_rate=1e-3, max_steps=3)
    assert made == [None]  # no copy of the starting weights was made
    logged = [r["loss"] for r in records(tmp_path / "out") if "loss" in r]
    assert len(logged) == 3 and logged[-1] < logged[0]
    start = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert any(not torch.equal(p, start.state_dict()[n]) for n, p in result.model.named_parameters())


def test_simpo_pair_loss_accumulates_to_the_step_of_one_big_batch(tmp_path, tiny_model_dir):
    # cpo_alpha 0: the loss is a mean over pairs, so micro-batches of 3, 3 and 2 give the step of one batch of 8
    keys = {"optimizer": "sgd", "learning_rate": 0.5, "num_epochs": 2, "cpo_alpha": 0.0}
    big = train(tmp_path, tiny_model_dir, "simpo", out="big", micro_batch_size=8, gradient_accumulation_steps=1, **keys)
    small = train(tmp_path, tiny_model_dir, "simpo", out="small", micro_batch_size=3, gradient_accumulation_steps=3,
                  **keys)
    assert big.steps == small.steps == 2
    # The same sums in another order and blocking (tests/tolerances.py): 8 pairs of 2 sequences of at most 64
    # tokens, over 2 steps. SGD: LoRA's B matrices start at zero, so each one's value is its own update.
    from transformers import AutoConfig

    rel = training_rel_tol(AutoConfig.from_pretrained(tiny_model_dir), tokens=8 * 2 * 64, steps=2)
    for a, b in zip(records(tmp_path / "big"), records(tmp_path / "small"), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=rel)
    compared = 0
    for (name, p), (_, q) in zip(big.model.named_parameters(), small.model.named_parameters(), strict=True):
        if "lora_B" in name:
            scale = q.detach().abs().max().item()
            torch.testing.assert_close(p, q, rtol=0, atol=(rel + EPS) * scale, msg=name)
            compared += scale > 0
    assert compared  # the B matrices moved


def test_orpo_sigkill_then_resume_reproduces_the_losses(tmp_path, tiny_model_dir):
    assert_sigkill_resume_reproduces(tmp_path, tiny_model_dir, **METHOD["orpo"])


@pytest.mark.parametrize("rl", ["orpo", "simpo"])
def test_preprocess_debug_shows_each_side_as_for_dpo(tmp_path, smol_tok_dir, rl):
    cfg = write_config(tmp_path, smol_tok_dir, [{"question": "Say hi", "chosen": "hi", "rejected": "bye"}])
    cfg.write_text(yaml.safe_dump({**yaml.safe_load(cfg.read_text()), **METHOD[rl]}))
    r = newtune("preprocess", str(cfg), "--debug", "--debug-num-examples", "1", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "pair 0: prompt (masked) + chosen (trained)" in r.stderr and "hi(6004, 6004) <|im_end|>(2, 2)" in r.stderr
    assert "bye(25257, 25257) <|im_end|>(2, 2)" in r.stderr


def test_method_keys_refused_from_the_cli(tmp_path, smol_tok_dir):
    cfg = write_config(tmp_path, smol_tok_dir, [{"question": "Q", "chosen": "a", "rejected": "b"}])
    cfg.write_text(yaml.safe_dump({**yaml.safe_load(cfg.read_text()), "rl": "simpo"}))
    r = newtune("check", str(cfg), "--orpo_alpha", "0.2", tmp_path=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "rl: simpo needs simpo_gamma" in r.stderr and "orpo_alpha applies to rl: orpo only" in r.stderr
    r = newtune("check", str(cfg), "--simpo_gamma", "0.5", "--cpo_alpha", "0", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
