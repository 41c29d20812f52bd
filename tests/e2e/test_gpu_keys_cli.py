"""GPU-only keys on a machine without CUDA: `check` accepts them, `train` refuses them before loading anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

NEWTUNE = [str(Path(sys.executable).parent / "newtune")]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(NEWTUNE + list(args), capture_output=True, text=True, timeout=120)


def no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


KEYS = """\
load_in_4bit: true
adapter: qlora
lora_target_linear: true
bnb_config_kwargs:
  bnb_4bit_quant_type: fp4
attn_implementation: flash_attention_3
optimizer: adamw_torch_4bit
gptq: true
fp8: true
torch_compile: true
qat:
  weight_dtype: int4
  group_size: 32
model_quantization_config: Mxfp4Config
use_scattermoe: true
liger_rms_norm: true
"""
NAMED = ["load_in_4bit", "bnb_config_kwargs", "attn_implementation: flash_attention_3", "optimizer: adamw_torch_4bit",
         "gptq", "model_quantization_config: Mxfp4Config", "qat", "fp8", "torch_compile", "use_scattermoe"]


@pytest.mark.skipif(not no_cuda(), reason="this machine has a CUDA GPU")
def test_check_accepts_and_train_refuses_before_loading(tmp_path):
    cfg = tmp_path / "c.yml"
    # Neither the model nor the data exists: train must stop at the GPU keys, before it looks for them.
    cfg.write_text(f"base_model: {tmp_path}/no-model\ndatasets:\n  - path: {tmp_path}/no-data.jsonl\n"
                   f"    type: alpaca\noutput_dir: {tmp_path}/out\n{KEYS}")
    checked = run("check", str(cfg))
    assert checked.returncode == 0, checked.stderr
    assert "note: load_in_4bit, bnb_config_kwargs, attn_implementation, optimizer, gptq" in checked.stderr
    assert "need a CUDA GPU; train refuses them" in checked.stderr
    trained = run("train", str(cfg))
    assert trained.returncode == 2, trained.stderr
    assert "Traceback" not in trained.stderr
    lines = [line.removeprefix("error: ") for line in trained.stderr.splitlines()[:len(NAMED)]]
    assert lines == [f"{key} needs a CUDA GPU, and this machine has none" for key in NAMED]
    assert "liger" not in trained.stderr  # Liger keys run on CPU with the same math
    assert "no-model" not in trained.stderr and not (tmp_path / "out").exists()
