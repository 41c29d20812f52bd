"""FSDP2 on 2 CPU processes (gloo): same steps as one process, sharded checkpoints, consolidation, resume 2 → 1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tolerances import EPS, backward_terms, rel_tol, training_rel_tol

pytestmark = pytest.mark.xdist_group("processes")  # with the other tests that start processes

BIN = Path(sys.executable).parent
NEWTUNE = str(BIN / "newtune")
WORDS = "alpha beta gamma delta epsilon zeta eta theta".split()
FSDP2 = {"fsdp_version": 2, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
         "transformer_layer_cls_to_wrap": "LlamaDecoderLayer", "reshard_after_forward": True,
         "state_dict_type": "SHARDED_STATE_DICT"}


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}


def weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path)


STEP_TOKENS = 4 * 64  # a step: 2 ranks (or 2 accumulated micro-batches) × 2 rows of at most sequence_len 64


def loss_rel(model_dir: Path, steps: int) -> float:
    """Two runs that differ only in the order of their fp32 sums (tests/tolerances.py), after `steps` steps."""
    from transformers import AutoConfig

    return training_rel_tol(AutoConfig.from_pretrained(model_dir), STEP_TOKENS, steps)


def assert_weights_close(got: dict, want: dict, init: dict, model_dir: Path, steps: int) -> None:
    """Plain SGD: w = w0 − lr·Σ g, so two runs' weights differ by lr·Σ Δg, each gradient by the reordering of
    its forward and backward sums relative to the gradient's size — and lr·Σ g is the weights' own update.
    So: `steps` steps of backward sums times the largest update of the tensor, plus the rounding of w itself."""
    from transformers import AutoConfig

    terms = steps * backward_terms(AutoConfig.from_pretrained(model_dir), STEP_TOKENS)
    # the tiny model ties its head to the embeddings: a file may hold lm_head.weight as well, or not
    assert set(got) ^ set(want) <= {"lm_head.weight"} and got
    for name in set(got) & set(want):
        w = want[name]
        start = init[name] if name in init else init["model.embed_tokens.weight"]
        update = (w - start).abs().max().item()
        atol = rel_tol(terms) * update + EPS * w.abs().max().item()
        torch_close(got[name], w, atol, name)


def torch_close(got, want, atol: float, name: str) -> None:
    import torch

    torch.testing.assert_close(got, want, rtol=0, atol=atol, msg=name)


def test_fsdp2_full_fine_tune_equals_one_process_consolidates_and_resumes_on_one(tmp_path, tiny_model_dir):
    """Plain SGD, so weights differ only by lr × (gradient difference), and gradients only by the order of
    fp32 sums (two ranks' halves reduce-scattered vs one process accumulating)."""
    from transformers import AutoModelForCausalLM

    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"segments": [{"text": f"<|im_start|>user\n{w}<|im_end|>\n", "label": False},
                                                     {"text": f"{w} {w} {w}<|im_end|>", "label": True}]}) + "\n"
                            for w in WORDS))
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({
        "base_model": str(tiny_model_dir), "datasets": [{"path": str(rows), "type": "input_output"}],
        "dataset_prepared_path": str(tmp_path / "prepared"), "sequence_len": 64, "optimizer": "sgd",
        "learning_rate": 0.5, "micro_batch_size": 2, "max_steps": 4, "save_steps": 2, "fsdp_config": FSDP2}))
    run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "newtune", "train", str(config), "--output_dir", "two"],
        tmp_path)
    run([NEWTUNE, "train", str(config), "--output_dir", "one", "--gradient_accumulation_steps", "2"], tmp_path)
    two, one = tmp_path / "two", tmp_path / "one"
    assert list(losses(two).values()) == pytest.approx(list(losses(one).values()), rel=loss_rel(tiny_model_dir, 4))
    assert losses(two)[4] < losses(two)[1] - 0.1  # it learns: the comparison is not of two untrained models
    ckpt = two / "checkpoint-2"
    assert (ckpt / "accelerate_state" / "pytorch_model_fsdp_0" / ".metadata").is_file()
    assert not (ckpt / "model.safetensors").exists()  # sharded checkpoints: no gathered copy at each save
    final_two, final_one = weights(two / "model.safetensors"), weights(one / "model.safetensors")
    init = weights(tiny_model_dir / "model.safetensors")
    assert_weights_close(final_two, final_one, init, tiny_model_dir, steps=4)

    # A crashed run's newest checkpoint, consolidated: plain transformers loads it; it is the 1-process step 2
    run([NEWTUNE, "merge-sharded", "two", "--checkpoint", str(ckpt), "--out", "merged"], tmp_path)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    step2 = weights(one / "checkpoint-2" / "model.safetensors")
    merged_weights = {name: value for name, value in merged.state_dict().items() if name in step2}
    assert merged_weights.keys() == step2.keys()
    assert_weights_close(merged_weights, step2, init, tiny_model_dir, steps=2)

    # 2 → 1: the DCP shards resume on one process with double accumulation and give the same steps 3 and 4
    run([NEWTUNE, "train", str(config), "--output_dir", "resumed", "--resume_from_checkpoint", str(ckpt),
         "--gradient_accumulation_steps", "2"], tmp_path)
    resumed = losses(tmp_path / "resumed")
    assert sorted(resumed) == [3, 4]
    assert [resumed[3], resumed[4]] == pytest.approx([losses(two)[3], losses(two)[4]], rel=loss_rel(tiny_model_dir, 4))
    assert_weights_close(weights(tmp_path / "resumed" / "model.safetensors"), final_two, init, tiny_model_dir, steps=4)


def test_fsdp1_style_lora_under_accelerate_launch_equals_one_process_and_resumes_2_to_2(tmp_path, tiny_model_dir):
    """An FSDP1 config (axolotl < 0.20) is translated to FSDP2 with a warning, and trains LoRA like one process."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"segments": [{"text": f"<|im_start|>user\n{w}<|im_end|>\n", "label": False},
                                                     {"text": f"{w} {w} {w}<|im_end|>", "label": True}]}) + "\n"
                            for w in WORDS))
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({
        "base_model": str(tiny_model_dir), "datasets": [{"path": str(rows), "type": "input_output"}],
        "dataset_prepared_path": str(tmp_path / "prepared"), "sequence_len": 64, "adapter": "lora",
        "lora_target_linear": True, "learning_rate": 0.01, "micro_batch_size": 2, "max_steps": 4, "save_steps": 2,
        "fsdp": ["full_shard", "auto_wrap"], "fsdp_config": {
            "fsdp_version": 1, "fsdp_transformer_layer_cls_to_wrap": "LlamaDecoderLayer",
            "fsdp_state_dict_type": "SHARDED_STATE_DICT", "fsdp_sync_module_states": True}}))
    with socket.socket() as s:  # a free port: other runs on this machine may hold accelerate's default 29500
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = run([str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--main_process_port",
               str(port), "-m", "newtune", "train",
               str(config), "--output_dir", "two"], tmp_path)
    assert "fsdp: [full_shard] → fsdp_config.reshard_after_forward: True" in " ".join(two.stderr.split())
    assert (tmp_path / "two" / "checkpoint-2" / "accelerate_state" / "pytorch_model_fsdp_0").is_dir()
    run([NEWTUNE, "train", str(config), "--output_dir", "one", "--gradient_accumulation_steps", "2"], tmp_path)
    rel = loss_rel(tiny_model_dir, 4)  # Adam: the update is the gradient scaled by its own magnitude (tolerances.py)
    assert list(losses(tmp_path / "two").values()) == pytest.approx(list(losses(tmp_path / "one").values()), rel=rel)
    run([NEWTUNE, "train", str(config), "--nproc", "2", "--output_dir", "resumed", "--resume_from_checkpoint",
         str(tmp_path / "two" / "checkpoint-2")], tmp_path)
    resumed = losses(tmp_path / "resumed")
    assert sorted(resumed) == [3, 4]
    assert [resumed[3], resumed[4]] == pytest.approx([losses(tmp_path / "two")[s] for s in (3, 4)], rel=rel)
    assert (tmp_path / "resumed" / "adapter_model.safetensors").is_file()
