"""`newtune train` then `newtune evaluate` on the tiny model, through the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import yaml

NEWTUNE = str(Path(sys.executable).parent / "newtune")
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()


def test_train_writes_outputs_and_evaluate_matches(tmp_path, tiny_model_dir):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"segments": [
        {"text": f"<|im_start|>user\nSay {w}<|im_end|>\n", "label": False},
        {"text": f"<|im_start|>assistant\n{w} {w}<|im_end|>", "label": True}]}) + "\n" for w in WORDS))
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({
        "base_model": str(tiny_model_dir), "datasets": [{"path": str(rows), "type": "input_output"}],
        "dataset_prepared_path": str(tmp_path / "prepared"), "sequence_len": 64, "adapter": "lora",
        "lora_target_linear": True, "learning_rate": 0.01, "micro_batch_size": 2, "num_epochs": 2,
        "val_set_size": 2, "output_dir": str(tmp_path / "out")}))
    res = subprocess.run([NEWTUNE, "train", str(config)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "out"
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "newtune.yml",
                 "prompt_format.json", "metrics.jsonl", "loss.png", "checkpoint-4/newtune_checkpoint.json"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoint-8").exists()  # the end of the last epoch is the final output, not a checkpoint
    assert yaml.safe_load((out / "newtune.yml").read_text())["val_set_size"] == 2
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 9))  # 8 train rows / 2 = 4 steps × 2 epochs
    final_eval = records[-1]["eval_loss"]
    # the summary a user keeps on stdout; the precision line and one plain line per step (no terminal) on stderr
    assert "final loss" in res.stdout and "tokens/s" in res.stdout and str(out) in res.stdout
    assert "precision: fp32 (auto: NEWTUNE_CPU_BF16=0" in res.stderr and "final loss" not in res.stderr
    assert len([line for line in res.stderr.splitlines() if line.startswith("step ") and " tok/s  ETA " in line]) == 8

    res = subprocess.run([NEWTUNE, "evaluate", str(config)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("eval loss ") and "eval loss" not in res.stderr
    ev = json.loads((out / "eval.json").read_text())
    # The same float32 weights (saved exactly) through the same batches and kernels: the same sums.
    assert ev["rows"] == 2 and ev["loss"] == final_eval
    assert ev["perplexity"] == math.exp(ev["loss"])  # exact: float64 through JSON and exp


def test_evaluate_without_a_trained_model_is_a_user_error(tmp_path, tiny_model_dir):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"segments": [{"text": f"{w} {w}", "label": True}]}) + "\n" for w in WORDS))
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({
        "base_model": str(tiny_model_dir), "datasets": [{"path": str(rows), "type": "input_output"}],
        "dataset_prepared_path": str(tmp_path / "prepared"), "sequence_len": 64, "val_set_size": 2,
        "output_dir": str(tmp_path / "none")}))
    res = subprocess.run([NEWTUNE, "evaluate", str(config)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "holds no trained model" in res.stderr and "Traceback" not in res.stderr
