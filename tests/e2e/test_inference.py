"""`newtune train` then `newtune inference` through the CLI, on the tiny model: the answer is the
greedy continuation of base + adapter after the alpaca prompt training used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tolerances import assert_close_sums, decoder_terms

NEWTUNE = str(Path(sys.executable).parent / "newtune")
WORDS = "alpha beta gamma delta epsilon zeta eta theta".split()
pytestmark = pytest.mark.xdist_group("e2e_inference")  # one worker trains once for the whole module


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("infer")
    rows = tmp / "rows.jsonl"
    rows.write_text("".join(json.dumps({"instruction": f"Say {w}", "output": f"{w} {w}"}) + "\n" for w in WORDS))
    config = tmp / "c.yml"
    config.write_text(yaml.safe_dump({
        "base_model": str(tiny_model_dir), "datasets": [{"path": str(rows), "type": "alpaca"}],
        "dataset_prepared_path": str(tmp / "prepared"), "sequence_len": 128, "adapter": "lora",
        "lora_target_linear": True, "learning_rate": 0.05, "micro_batch_size": 4, "max_steps": 4,
        "output_dir": str(tmp / "out")}))
    res = subprocess.run([NEWTUNE, "train", str(config)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return config


def expected_answer(config: Path, prompt: str, *, base: bool) -> str:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = yaml.safe_load(config.read_text())
    out = Path(cfg["output_dir"])
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(cfg["base_model"], dtype=torch.float32)
    if not base:
        model = PeftModel.from_pretrained(model, out)
    text = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
            f"request.\n\n### Instruction:\n{prompt}\n\n### Response:\n")
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        gen = model.eval().generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,
                                    do_sample=False, eos_token_id=[tok.eos_token_id], pad_token_id=tok.eos_token_id)
    return tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)


def test_inference_answers_with_the_adapter_in_the_training_format(trained):
    res = subprocess.run([NEWTUNE, "inference", str(trained), "--prompt", "Say gamma", "--max-new-tokens", "6"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((Path(yaml.safe_load(trained.read_text())["output_dir"]) / "prompt_format.json").read_text())[
        "prompt_field"] == "instruction"
    answer = expected_answer(trained, "Say gamma", base=False)
    assert res.stdout == answer + "\n"
    # the slow steps say what they do and how long they took (stderr, plain lines outside a terminal)
    # one plain line each, however long the path (a log file is not wrapped at 80 columns)
    assert any(line.startswith("INFO     loading base model") and ": done in " in line for line in res.stderr.splitlines()), res.stderr
    assert "first reply: time to its first text: " in res.stderr, res.stderr
    base = subprocess.run([NEWTUNE, "inference", str(trained), "--prompt", "Say gamma", "--max-new-tokens", "6", "--base"],
                          capture_output=True, text=True, timeout=300)
    assert base.returncode == 0 and base.stdout == expected_answer(trained, "Say gamma", base=True) + "\n"
    assert base.stdout != res.stdout


def test_inference_reads_the_prompt_from_stdin(trained):
    res = subprocess.run([NEWTUNE, "inference", str(trained), "--max-new-tokens", "6"], input="Say gamma\n",
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout == expected_answer(trained, "Say gamma", base=False) + "\n"


def test_inference_without_training_exits_2(trained, tmp_path):
    res = subprocess.run([NEWTUNE, "inference", str(trained), "--output_dir", str(tmp_path / "nothing"),
                          "--prompt", "hi"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "holds no trained model" in res.stderr and "Traceback" not in res.stderr


def test_merge_lora_then_plain_transformers(trained, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    res = subprocess.run([NEWTUNE, "merge-lora", str(trained), "--out", str(tmp_path / "merged")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    # library noise newtune handled stays out; --verbose (anywhere on the line) shows it
    for noise in ("is_gradient_checkpointing", "Loading weights", "Could not find a config file"):
        assert noise not in res.stderr, res.stderr
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}  # a user's own choice wins
    loud = subprocess.run([NEWTUNE, "merge-lora", str(trained), "--out", str(tmp_path / "again"), "--verbose"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert loud.returncode == 0 and "Loading weights" in loud.stderr, loud.stderr[-3000:]
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    cfg = yaml.safe_load(trained.read_text())
    from peft import PeftModel

    ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(cfg["base_model"]), cfg["output_dir"]).eval()
    ids = torch.tensor([[1, 520, 2113, 314, 253, 1351, 30, 2]])
    with torch.no_grad():
        # Merged weights sum in another order than the adapter's separate path: one forward's sums.
        assert_close_sums(merged(input_ids=ids).logits, ref(input_ids=ids).logits,
                          decoder_terms(merged.config, ids.numel()))


@pytest.mark.slow
def test_quickstart_base_model_answers_in_its_chat_format(tmp_path):
    """`--base` on the quickstart config: the embedded model, prompted through its own ChatML template."""
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([NEWTUNE, "inference", "examples/quickstart.yml", "--base", "--output_dir", str(tmp_path),
                          "--prompt", "What is the capital of France?", "--max-new-tokens", "12"],
                         cwd=root, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout == "The capital of France is Paris.\n"


def test_chat_streams_each_reply_after_its_prompt_and_times_only_the_first(trained):
    res = subprocess.run([NEWTUNE, "inference", str(trained), "--chat", "--max-new-tokens", "6"],
                         input="Say gamma\nSay gamma\n\n", capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    answer = expected_answer(trained, "Say gamma", base=False)
    replies = [line for line in res.stdout.splitlines() if line.startswith("model> ")]
    assert replies[0] == f"model> {answer}", res.stdout
    assert len(replies) == 2  # the second turn answers with the first one in its history
    assert res.stderr.count("first reply: time to its first text: ") == 1, res.stderr
