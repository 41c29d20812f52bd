"""GPU-only paths: QLoRA (bitsandbytes 4-bit), flash-attention 2 on packed rows, 8-bit optimizers.

Skipped, with the reason, where there is no CUDA GPU (or the package is missing): they need one. On CPU
the same features' error paths are tested (tests/model/test_adapters.py, test_model_load.py, test_optim.py).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from tiny_run import losses, tiny_run_fixture  # noqa: F401 (the tiny_run fixture)

from newtune.train.loop import run_training

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU: QLoRA, flash-attention 2 and 8-bit optimizers run only there")


def needs(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"needs the {package} package")


def test_qlora_trains_lora_on_a_4bit_base(tiny_run):
    needs("bitsandbytes")
    import bitsandbytes as bnb

    from newtune.train.loss import unwrap_model

    cfg, console = tiny_run(adapter="qlora", load_in_4bit=True, rows=4, num_epochs=10, learning_rate=0.2,
                            lr_scheduler="constant", micro_batch_size=4, bf16=True)
    result = run_training(cfg, console)
    base = unwrap_model(result.model)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in base.modules())
    trainable = [n for n, p in result.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    curve = losses(result.output_dir)
    # As on CPU (test_loop.py): the tiny model's frozen tied embeddings cap how far LoRA alone goes.
    assert curve[-1] < curve[0] - 0.2 and max(curve[-3:]) < min(curve[:3]), curve
    assert (result.output_dir / "adapter_model.safetensors").exists()


def test_flash_attention_packed_loss_equals_sdpa_padded(tiny_model_dir):
    needs("flash_attn")
    from transformers import AutoModelForCausalLM

    from newtune.train.collate import pack_batch, pad_batch
    from newtune.train.loss import lm_loss_sum

    g = torch.Generator().manual_seed(0)
    rows = [{"input_ids": (ids := torch.randint(3, 400, (n,), generator=g).tolist()), "labels": ids}
            for n in (17, 5, 30, 11)]

    def load(kind: str):
        return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16,
                                                    attn_implementation=kind).cuda()

    flash, n_flash = lm_loss_sum(load("flash_attention_2"), pack_batch([rows[:2], rows[2:]], 0, flatten=True).to("cuda"))
    sdpa, n_sdpa = lm_loss_sum(load("sdpa"), pad_batch(rows, 0).to("cuda"))
    assert n_flash == n_sdpa
    # bfloat16 (relative rounding 2**-8): the two attention kernels round scores, softmax and output at other
    # points, about 2 layers x 2-3 roundings ≈ 5 x 2**-8 ≈ 2e-2.
    assert flash.item() == pytest.approx(sdpa.item(), rel=5 * 2**-8)


def test_flash_attention_training_run_packs_without_padding(tiny_run):
    needs("flash_attn")
    cfg, console = tiny_run(attn_implementation="flash_attention_2", sample_packing=True, bf16=True, max_steps=3)
    result = run_training(cfg, console)
    assert result.steps == 3 and all(x == x for x in losses(result.output_dir))


@pytest.mark.parametrize("optimizer", ["adamw_bnb_8bit", "paged_adamw_8bit"])
def test_8bit_optimizers_train(tiny_run, optimizer):
    needs("bitsandbytes")
    cfg, console = tiny_run(optimizer=optimizer, rows=4, num_epochs=10, learning_rate=0.2,
                            lr_scheduler="constant", micro_batch_size=4)
    result = run_training(cfg, console)
    curve = losses(result.output_dir)
    assert curve[-1] < curve[0]
