"""Which parameters train for each adapter kind: LoRA, DoRA, rsLoRA, modules_to_save, soft prompts."""

from __future__ import annotations

import pytest

from conftest import tiny_model
from newtune.config.adapter import AdapterConfig
from newtune.errors import ModelError
from newtune.model.adapters import apply_adapter, linear_module_names

LINEAR = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def trainable(model) -> list[str]:
    return sorted(n for n, p in model.named_parameters() if p.requires_grad)


def kinds(names: list[str]) -> set[str]:
    """'base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight' → 'q_proj.lora_A'."""
    out = set()
    for n in names:
        parts = n.split(".")
        i = next(i for i, p in enumerate(parts) if p in LINEAR + ["embed_tokens", "lm_head", "prompt_encoder"])
        out.add(".".join(parts[i:i + 2]))
    return out


def test_full_fine_tune_trains_everything(smol_tok):
    model = tiny_model(len(smol_tok))
    for p in model.parameters():
        p.requires_grad_(False)
    model = apply_adapter(model, AdapterConfig(), smol_tok)
    assert all(p.requires_grad for p in model.parameters())


def test_lora_target_linear_adapts_every_linear_but_the_head(smol_tok):
    model = tiny_model(len(smol_tok))
    assert linear_module_names(model) == LINEAR
    peft = apply_adapter(model, AdapterConfig(adapter="lora", lora_target_linear=True, lora_r=4), smol_tok)
    names = trainable(peft)
    assert kinds(names) == {f"{m}.lora_A" for m in LINEAR} | {f"{m}.lora_B" for m in LINEAR}
    assert len(names) == 2 * 7 * 2  # A and B, 7 modules, 2 layers
    q_a = dict(peft.named_parameters())["base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"]
    assert tuple(q_a.shape) == (4, 64)


def test_lora_named_modules_and_scaling(smol_tok):
    cfg = AdapterConfig(adapter="lora", lora_target_modules=["q_proj", "v_proj"], lora_r=4, lora_alpha=8, lora_dropout=0.1)
    peft = apply_adapter(tiny_model(len(smol_tok)), cfg, smol_tok)
    assert kinds(trainable(peft)) == {"q_proj.lora_A", "q_proj.lora_B", "v_proj.lora_A", "v_proj.lora_B"}
    q = peft.base_model.model.model.layers[0].self_attn.q_proj
    assert q.scaling["default"] == 2.0 and q.lora_dropout["default"].p == 0.1


def test_rslora_scales_by_sqrt_r(smol_tok):
    cfg = AdapterConfig(adapter="lora", lora_target_modules=["q_proj"], lora_r=4, lora_alpha=8, peft_use_rslora=True)
    peft = apply_adapter(tiny_model(len(smol_tok)), cfg, smol_tok)
    assert peft.base_model.model.model.layers[0].self_attn.q_proj.scaling["default"] == 4.0  # 8 / sqrt(4)


def test_dora_adds_trainable_magnitude(smol_tok):
    cfg = AdapterConfig(adapter="lora", lora_target_modules=["v_proj"], lora_r=4, peft_use_dora=True)
    names = trainable(apply_adapter(tiny_model(len(smol_tok)), cfg, smol_tok))
    assert [n.split("v_proj.")[1] for n in names if ".layers.0." in n] == [
        "lora_A.default.weight", "lora_B.default.weight", "lora_magnitude_vector.default.weight"]


def test_modules_to_save_trains_a_full_copy(smol_tok):
    cfg = AdapterConfig(adapter="lora", lora_target_modules=["q_proj"], lora_modules_to_save=["embed_tokens"])
    names = trainable(apply_adapter(tiny_model(len(smol_tok)), cfg, smol_tok))
    assert "base_model.model.model.embed_tokens.modules_to_save.default.weight" in names
    assert "base_model.model.model.embed_tokens.original_module.weight" not in names


def test_added_tokens_train_the_embeddings(smol_tok):
    cfg = AdapterConfig(adapter="lora", lora_target_modules=["q_proj"])
    peft = apply_adapter(tiny_model(len(smol_tok)), cfg, smol_tok, added_tokens=True)
    assert kinds(trainable(peft)) == {"q_proj.lora_A", "q_proj.lora_B", "embed_tokens.modules_to_save"}
    inner = peft.base_model.model
    assert inner.lm_head.weight is inner.model.embed_tokens.weight  # the tied head trains with the embeddings


def test_unknown_target_module_is_a_model_error(smol_tok):
    with pytest.raises(ModelError) as e:
        apply_adapter(tiny_model(len(smol_tok)), AdapterConfig(adapter="lora", lora_target_modules=["c_attn"]), smol_tok)
    assert e.value.where == "lora_target_modules" and e.value.problem == "the model has no module named c_attn"


@pytest.mark.parametrize(("kind", "extra", "expected"), [
    ("prompt_tuning", {}, ["prompt_encoder.default.embedding.weight"]),
    ("prefix_tuning", {}, ["prompt_encoder.default.embedding.weight"]),
    ("p_tuning", {"peft_encoder_num_layers": 2}, [
        "prompt_encoder.default.embedding.weight",
        "prompt_encoder.default.mlp_head.0.bias", "prompt_encoder.default.mlp_head.0.weight",
        "prompt_encoder.default.mlp_head.2.bias", "prompt_encoder.default.mlp_head.2.weight",
        "prompt_encoder.default.mlp_head.4.bias", "prompt_encoder.default.mlp_head.4.weight"]),
    ("multitask_prompt_tuning", {"peft_num_tasks": 3, "peft_num_ranks": 2}, [
        "prompt_encoder.default.embedding.weight", "prompt_encoder.default.prefix_task_cols",
        "prompt_encoder.default.prefix_task_rows"]),
])
def test_soft_prompts_train_only_the_prompt(smol_tok, kind, extra, expected):
    cfg = AdapterConfig(adapter=kind, peft_num_virtual_tokens=5, **extra)
    peft = apply_adapter(tiny_model(len(smol_tok)), cfg, smol_tok)
    assert trainable(peft) == expected
    emb = dict(peft.named_parameters())["prompt_encoder.default.embedding.weight"]
    # prefix tuning stores a key and value per layer (2 layers × 2 × kv heads 2 × head dim 16 = 128)
    assert tuple(emb.shape) == (5, 128 if kind == "prefix_tuning" else 64)
    if kind == "multitask_prompt_tuning":  # a rank-2 (virtual tokens × hidden) matrix per task
        params = dict(peft.named_parameters())
        assert tuple(params["prompt_encoder.default.prefix_task_cols"].shape) == (3, 5, 2)
        assert tuple(params["prompt_encoder.default.prefix_task_rows"].shape) == (3, 2, 64)


def test_prompt_tuning_init_from_text(smol_tok):
    cfg = AdapterConfig(adapter="prompt_tuning", peft_num_virtual_tokens=3, peft_prompt_tuning_init="text",
                        peft_prompt_tuning_init_text="Answer like a pirate")
    model = tiny_model(len(smol_tok))
    peft = apply_adapter(model, cfg, smol_tok)
    ids = smol_tok("Answer like a pirate", add_special_tokens=False)["input_ids"][:3]
    import torch

    emb = dict(peft.named_parameters())["prompt_encoder.default.embedding.weight"]
    assert torch.equal(emb.detach(), peft.get_input_embeddings().weight[ids].detach())


def test_continue_from_saved_adapter_is_trainable(tmp_path, smol_tok):
    import torch

    cfg = AdapterConfig(adapter="lora", lora_target_modules=["q_proj"], lora_r=4)
    first = apply_adapter(tiny_model(len(smol_tok)), cfg, smol_tok)
    with torch.no_grad():
        first.base_model.model.model.layers[0].self_attn.q_proj.lora_B["default"].weight.fill_(0.5)
    first.save_pretrained(tmp_path / "adapter")
    again = apply_adapter(tiny_model(len(smol_tok)), AdapterConfig(**{**cfg.model_dump(), "lora_model_dir": str(tmp_path / "adapter")}), smol_tok)
    b = again.base_model.model.model.layers[0].self_attn.q_proj.lora_B["default"].weight
    assert b.requires_grad and torch.all(b == 0.5)
    assert kinds(trainable(again)) == {"q_proj.lora_A", "q_proj.lora_B"}


def test_lora_model_dir_without_adapter_is_a_model_error(tmp_path, smol_tok):
    cfg = AdapterConfig(adapter="lora", lora_target_modules=["q_proj"], lora_model_dir=str(tmp_path))
    with pytest.raises(ModelError, match="holds no saved adapter"):
        apply_adapter(tiny_model(len(smol_tok)), cfg, smol_tok)


def test_qlora_without_gpu_says_it_needs_cuda(smol_tok):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    cfg = AdapterConfig(adapter="qlora", lora_target_linear=True)
    with pytest.raises(ModelError) as e:
        apply_adapter(tiny_model(len(smol_tok)), cfg, smol_tok)
    assert e.value.where == "adapter" and e.value.problem.startswith("QLoRA needs a CUDA GPU")


def test_load_in_4bit_without_gpu_says_it_needs_cuda(tiny_model_dir, smol_tok):
    import torch

    from newtune.config.model import ModelConfig
    from newtune.model.load import load_model

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ModelError) as e:
        load_model(ModelConfig(base_model=str(tiny_model_dir), load_in_4bit=True), smol_tok, dtype=torch.float32)
    assert e.value.where == "load_in_4bit" and "need a CUDA GPU" in e.value.problem


def test_check_names_the_linear_layers_lora_target_linear_adapts(smol_tok):
    from newtune.check import LINEAR_BY_MODEL_TYPE
    from newtune.model.adapters import linear_module_names

    model = tiny_model(len(smol_tok))
    assert linear_module_names(model) == LINEAR_BY_MODEL_TYPE[model.config.model_type]
