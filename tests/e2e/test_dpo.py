"""`rl: dpo` end to end: training (LoRA and full), accumulation, kill -9 resume, preprocess --debug, bad rows."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from rich.console import Console

from tolerances import EPS, training_rel_tol

NEWTUNE = str(Path(sys.executable).parent / "newtune")
WORDS = "alpha beta gamma delta epsilon zeta eta theta".split()


def write_pairs(path: Path, n: int = 8) -> Path:
    rows = [{"system": "Be brief." if i % 2 else None, "question": f"Say {WORDS[i % 8]}",
             "chosen": f"{WORDS[i % 8]} {WORDS[i % 8]}", "rejected": f"no {WORDS[(i + 3) % 8]}"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def dpo_keys(tmp_path: Path, model_dir: Path, out: str = "out", **keys) -> dict:
    return {"base_model": str(model_dir), "rl": "dpo",
            "datasets": [{"path": str(write_pairs(tmp_path / "pairs.jsonl")), "type": "chatml.intel"}],
            "dataset_prepared_path": str(tmp_path / "prepared"), "sequence_len": 64, "adapter": "lora",
            "lora_target_linear": True, "lora_r": 4, "learning_rate": 0.02, "micro_batch_size": 2,
            "num_epochs": 1, "output_dir": str(tmp_path / out), "save_strategy": "no", "seed": 3, **keys}


def train(tmp_path: Path, model_dir: Path, **keys):
    from newtune.load import load_config
    from newtune.train.loop import run_training

    cfg = load_config(None, raw=dpo_keys(tmp_path, model_dir, **keys))
    return run_training(cfg, Console(file=io.StringIO(), width=120))


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_lora_dpo_starts_at_log_2_and_raises_the_margin(tmp_path, tiny_model_dir):
    result = train(tmp_path, tiny_model_dir, num_epochs=4, val_set_size=2)
    logged = [r for r in records(tmp_path / "out") if "loss" in r]
    # adapter = identity: policy == reference, each pair's loss is -logsigmoid(0) = log 2; their mean over the
    # step's 2 pairs rounds at most twice
    assert logged[0]["loss"] == pytest.approx(math.log(2), rel=2 * EPS)
    assert logged[0]["rewards/margins"] == 0.0 and logged[-1]["loss"] < logged[0]["loss"]
    assert logged[-1]["rewards/margins"] > 0 and logged[-1]["rewards/accuracies"] > 0.5
    assert {"rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"} <= set(logged[-1])
    evals = [r for r in records(tmp_path / "out") if "eval_loss" in r]
    assert evals and "eval_rewards/margins" in evals[-1]
    assert (tmp_path / "out" / "adapter_model.safetensors").exists() and result.steps == 12
    from newtune.export.prompt import Turn, prompt_ids

    fmt = json.loads((tmp_path / "out" / "prompt_format.json").read_text())
    assert fmt["kind"] == "pair" and fmt["type"] == "chatml.intel"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "out")
    ids = prompt_ids(fmt, [Turn("user", "Say hi")], tok, None)  # inference builds the training prompt
    assert tok.decode(ids) == "<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n"


def test_full_fine_tune_keeps_a_frozen_reference(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    result = train(tmp_path, tiny_model_dir, adapter=None, learning_rate=1e-3, max_steps=3)
    logged = [r["loss"] for r in records(tmp_path / "out") if "loss" in r]
    assert logged[0] == pytest.approx(math.log(2), rel=2 * EPS) and logged[-1] < logged[0]  # the reference is the start
    start = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    changed = [n for n, p in result.model.named_parameters() if not torch.equal(p, start.state_dict()[n])]
    assert changed  # the policy moved, while its reference stayed at the starting weights (loss left log 2)


def test_accumulation_gives_the_step_of_one_big_batch(tmp_path, tiny_model_dir):
    # sgd: the weights then differ by lr × (fp32 noise of the gradient); Adam would scale near-zero noise up to lr
    # 8 pairs per step: one micro-batch of 8, or micro-batches of 3, 3 and 2 (a mean of micro-batch means would differ)
    keys = {"optimizer": "sgd", "learning_rate": 0.5, "num_epochs": 2}
    big = train(tmp_path, tiny_model_dir, out="big", micro_batch_size=8, gradient_accumulation_steps=1, **keys)
    small = train(tmp_path, tiny_model_dir, out="small", micro_batch_size=3, gradient_accumulation_steps=3, **keys)
    assert big.steps == small.steps == 2
    # The same sums in another order and blocking (tests/tolerances.py): 8 pairs of 2 sequences of at most 64 tokens,
    # over 2 steps. A margin is beta × a difference of log-prob sums: its error scales with those sums' size.
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model_dir)
    rel, beta = training_rel_tol(config, tokens=8 * 2 * 64, steps=2), 0.1  # TRL's and axolotl's default rl_beta
    for a, b in zip(records(tmp_path / "big"), records(tmp_path / "small"), strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=rel)
        scale = beta * 2 * (abs(b["logps/chosen"]) + abs(b["logps/rejected"]))
        assert a["rewards/margins"] == pytest.approx(b["rewards/margins"], rel=0, abs=rel * scale)
    # SGD: weights differ by lr × the gradients' difference, relative to the update lr × Σ g. LoRA's B matrices
    # start at zero, so each one's value is its update (A's effect shows in the losses and margins above).
    compared = 0
    for (name, p), (_, q) in zip(big.model.named_parameters(), small.model.named_parameters(), strict=True):
        if "lora_B" in name:
            scale = q.detach().abs().max().item()
            torch.testing.assert_close(p, q, rtol=0, atol=(rel + EPS) * scale, msg=name)
            compared += scale > 0
    assert compared  # the B matrices moved: the comparison is not of two untouched adapters


def test_sigkill_then_resume_reproduces_the_losses(tmp_path, tiny_model_dir):
    assert_sigkill_resume_reproduces(tmp_path, tiny_model_dir)


def assert_sigkill_resume_reproduces(tmp_path: Path, model_dir: Path, **method) -> None:
    """kill -9 after the checkpoint of step 8 of 16, resume with auto_resume: the losses of the uninterrupted run.
    `method`: the rl keys (default rl: dpo)."""
    def config(out: str) -> Path:
        path = tmp_path / f"{out}.yml"
        keys = dpo_keys(tmp_path, model_dir, out, num_epochs=2, micro_batch_size=1, save_steps=4,
                        save_strategy=None, lora_dropout=0.3, learning_rate=0.01, **method)
        path.write_text(yaml.safe_dump(keys))
        return path

    def losses(out: str) -> dict[int, float]:
        return {r["step"]: r["loss"] for r in records(tmp_path / out) if "loss" in r}

    whole = subprocess.Popen([NEWTUNE, "train", str(config("whole"))], stderr=subprocess.PIPE, text=True)
    killed = subprocess.Popen([NEWTUNE, "train", str(config("killed"))], stderr=subprocess.PIPE, text=True)
    marker = tmp_path / "killed" / "checkpoint-8" / "newtune_checkpoint.json"
    while not marker.exists():
        assert killed.poll() is None, killed.stderr.read()[-2000:]
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert len(losses("killed")) < 16
    resumed = subprocess.run([NEWTUNE, "train", str(config("killed")), "--auto_resume_from_checkpoints", "true"],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr
    assert whole.wait(timeout=600) == 0, whole.stderr.read()[-3000:]
    assert sorted(losses("whole")) == list(range(1, 17))
    assert losses("killed") == losses("whole")


def newtune(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NEWTUNE_CACHE": str(tmp_path / "cache"), "COLUMNS": "200"}
    return subprocess.run([NEWTUNE, *args], capture_output=True, text=True, env=env, timeout=300)


def write_config(tmp_path: Path, smol_tok_dir: Path, rows: list[dict], ds_type: str = "chatml.intel") -> Path:
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(yaml.safe_dump({"base_model": str(smol_tok_dir), "rl": "dpo", "sequence_len": 64,
                                   "datasets": [{"path": str(data), "type": ds_type}],
                                   "dataset_prepared_path": str(tmp_path / "prep"), "shuffle_merged_datasets": False}))
    return cfg


def test_preprocess_debug_shows_prompt_masked_and_each_answer_trained(tmp_path, smol_tok_dir):
    rows = [{"question": "Say hi", "chosen": "hi", "rejected": "bye"},
            {"question": "Same", "chosen": "x", "rejected": "x"},
            {"question": "Long " * 80, "chosen": "a", "rejected": "b"}]
    dump = tmp_path / "dump.jsonl"
    r = newtune("preprocess", str(write_config(tmp_path, smol_tok_dir, rows)), "--debug", "--debug-num-examples", "1",
                "--dump", str(dump), tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    err = r.stderr
    assert "pair 0: prompt (masked) + chosen (trained)" in err and "pair 0: prompt (masked) + rejected" in err
    prompt = ("<|im_start|>(-100, 1) user(-100, 4093) \\n(-100, 198) Say(-100, 36218) ␣hi(-100, 15876) "
              "<|im_end|>(-100, 2) \\n(-100, 198) <|im_start|>(-100, 1) ass(-100, 520) istant(-100, 9531) "
              "\\n(-100, 198) ")
    assert prompt + "hi(6004, 6004) <|im_end|>(2, 2)" in err
    assert prompt + "bye(25257, 25257) <|im_end|>(2, 2)" in err
    assert "3 pairs read, 2 kept, 1 dropped (longer than sequence_len 64)" in err
    assert "1 train pairs have chosen == rejected" in err and "pairs.jsonl line 2" in err
    dumped = [json.loads(line) for line in dump.read_text().splitlines()]
    assert len(dumped) == 2 and dumped[0]["chosen_ids"] == [6004, 2]


@pytest.mark.parametrize(("row", "message"), [
    ({"question": "Q", "chosen": "", "rejected": "b"}, "pairs.jsonl line 1 (chatml.intel): empty chosen"),
    ({"question": "Q", "chosen": "a", "rejected": "  "}, "pairs.jsonl line 1 (chatml.intel): empty rejected"),
    ({"question": "Q", "chosen": "a"}, "pairs.jsonl line 1 (chatml.intel): missing field 'rejected' "
                                       "(row has: question, chosen)"),
])
def test_bad_pairs_exit_2_with_one_message(tmp_path, smol_tok_dir, row, message):
    r = newtune("preprocess", str(write_config(tmp_path, smol_tok_dir, [row])), tmp_path=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not list((tmp_path / "prep").glob("*/meta.json"))  # nothing half-written


def test_rl_config_errors(tmp_path, smol_tok_dir):
    cfg = write_config(tmp_path, smol_tok_dir, [{"question": "Q", "chosen": "a", "rejected": "b"}], "chatml.intell")
    r = newtune("check", str(cfg), "--rl_beta", "0.2", "--dpo_loss_type", "[aot]", tmp_path=tmp_path)
    assert r.returncode == 2
    assert "unknown preference dataset type 'chatml.intel' " not in r.stderr
    assert "unknown preference dataset type 'chatml.intell' for rl: dpo. Did you mean 'chatml.intel'?" in r.stderr
    assert "dpo_loss_type 'aot' is not supported by newtune yet" in r.stderr
