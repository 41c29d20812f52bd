"""Liger keys on CPU: newtune's own paths compute the same math; train says so once."""

from __future__ import annotations

import logging

from tiny_run import losses, tiny_run_fixture  # noqa: F401 (the tiny_run fixture)

from newtune.config.gpu import check_device, gpu_problems
from newtune.config.load import load_config
from newtune.train.loop import run_training

LIGER = {"plugins": ["axolotl.integrations.liger.LigerPlugin"], "liger_rope": True, "liger_rms_norm": True,
         "liger_glu_activation": True, "liger_layer_norm": True, "liger_fused_linear_cross_entropy": True}


def test_liger_keys_train_the_same_losses_and_say_so_once(tiny_run, caplog):
    cfg, console = tiny_run(out="plain", max_steps=3)
    run_training(cfg, console)
    liger_cfg, console = tiny_run(out="liger", max_steps=3, **LIGER)
    with caplog.at_level(logging.INFO, logger="newtune.train"):
        run_training(liger_cfg, console)
    notes = [r.getMessage() for r in caplog.records if "Liger" in r.getMessage()]
    assert len(notes) == 1 and notes[0].startswith("liger_rope, liger_rms_norm, liger_layer_norm, liger_glu_activation")
    assert "same math" in notes[0]
    assert losses(cfg.train.output_dir) == losses(liger_cfg.train.output_dir)


def test_on_a_gpu_the_keys_newtune_has_not_built_are_refused_not_ignored():
    cfg = load_config(None, raw={"datasets": [{"path": "d.jsonl", "type": "alpaca"}], "load_in_8bit": True,
                                 "fp8": True, "optimizer": "adamw_bnb_8bit", "liger_rms_norm": True})
    assert gpu_problems(cfg, "cuda") == ["fp8: not supported by newtune on GPU yet; remove it to continue"]
    assert gpu_problems(cfg, "cpu") == ["load_in_8bit needs a CUDA GPU, and this machine has none",
                                        "optimizer: adamw_bnb_8bit needs a CUDA GPU, and this machine has none",
                                        "fp8 needs a CUDA GPU, and this machine has none"]
    liger_only = load_config(None, raw={"datasets": [{"path": "d.jsonl", "type": "alpaca"}], "liger_rms_norm": True})
    assert "newtune does not load the Liger kernels" in check_device(liger_only, "cpu")


def test_kernel_hub_attention_and_moe_kernel_keys_need_a_gpu():
    cfg = load_config(None, raw={"datasets": [{"path": "d.jsonl", "type": "alpaca"}],
                                 "attn_implementation": "kernels-community/vllm-flash-attn3",
                                 "use_sonicmoe": True, "llama4_linearized_experts": True})
    assert gpu_problems(cfg, "cpu") == [
        "attn_implementation: kernels-community/vllm-flash-attn3 needs a CUDA GPU, and this machine has none",
        "use_sonicmoe needs a CUDA GPU, and this machine has none",
        "llama4_linearized_experts needs a CUDA GPU, and this machine has none"]
