"""A tiny training run for the train tests: a few input_output rows, the tiny Llama, a config from keys.

A plain module, not a conftest: a second conftest.py would shadow tests/conftest.py for `from conftest import`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def write_rows(path: Path, n: int) -> Path:
    """n rows: a masked question, a trained three-word answer."""
    rows = []
    for i in range(n):
        answer = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(3))
        rows.append({"segments": [{"text": f"<|im_start|>user\nSay {WORDS[i % len(WORDS)]}<|im_end|>\n", "label": False},
                                  {"text": f"<|im_start|>assistant\n{answer}<|im_end|>", "label": True}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def tiny_keys(tmp_path: Path, model_dir: Path, rows: int = 8) -> dict:
    """Config keys for a LoRA run on the tiny model; tests override what they test."""
    return {
        "base_model": str(model_dir),
        "datasets": [{"path": str(write_rows(tmp_path / "rows.jsonl", rows)), "type": "input_output"}],
        "dataset_prepared_path": str(tmp_path / "prepared"),
        "sequence_len": 64, "adapter": "lora", "lora_target_linear": True, "lora_r": 4,
        "learning_rate": 0.01, "micro_batch_size": 2, "gradient_accumulation_steps": 1, "num_epochs": 1,
        "output_dir": str(tmp_path / "out"), "save_strategy": "no", "seed": 3,
    }


@pytest.fixture(name="tiny_run")
def tiny_run_fixture(tmp_path, tiny_model_dir):
    """tiny_run(**keys) → (RunConfig, console); keys override tiny_keys."""
    from newtune.load import load_config

    def make(out: str = "out", rows: int = 8, **keys):
        raw = {**tiny_keys(tmp_path, tiny_model_dir, rows), "output_dir": str(tmp_path / out), **keys}
        return load_config(None, raw=raw), Console(file=io.StringIO(), width=120)

    return make


def losses(output_dir: str | Path) -> list[float]:
    from newtune.train.metrics import read_metrics

    return [r["loss"] for r in read_metrics(output_dir) if "loss" in r]
