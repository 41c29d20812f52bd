"""Model-loading keys of axolotl configs: model_config, resize_token_embeddings_to_32x, device_map,
bnb_config_kwargs, tokenizer_legacy."""

from __future__ import annotations

import torch

from newtune.config.model import ModelConfig
from newtune.data.tokenizer import tokenizer_for
from newtune.model import load as mload


def test_model_config_overrides_the_loaded_config(tiny_model_dir, smol_tok):
    cfg = ModelConfig(base_model=str(tiny_model_dir), model_config={"rms_norm_eps": 0.25, "use_cache": False})
    model = mload.load_model(cfg, smol_tok, dtype=torch.float32)
    assert model.config.rms_norm_eps == 0.25 and model.config.use_cache is False
    plain = mload.load_model(ModelConfig(base_model=str(tiny_model_dir)), smol_tok, dtype=torch.float32)
    assert plain.config.rms_norm_eps != 0.25
    x = torch.tensor([[1, 5, 9]])
    assert not torch.allclose(model(x).logits, plain(x).logits)  # the override reaches the computation


def test_resize_token_embeddings_to_32x_rounds_the_rows_up(tiny_model_dir, smol_tok_dir):
    from newtune.config.model import SpecialTokens

    tok = tokenizer_for(ModelConfig(base_model=str(smol_tok_dir), special_tokens=SpecialTokens(additional_special_tokens=["<x1>"])))
    n = len(tok)
    assert n % 32 != 0
    grown = mload.load_model(ModelConfig(base_model=str(tiny_model_dir)), tok, dtype=torch.float32)
    assert grown.get_input_embeddings().weight.shape[0] == n
    cfg = ModelConfig(base_model=str(tiny_model_dir), resize_token_embeddings_to_32x=True)
    rounded = mload.load_model(cfg, tok, dtype=torch.float32)
    assert rounded.get_input_embeddings().weight.shape[0] == -(-n // 32) * 32


def test_device_map_reaches_from_pretrained(tiny_model_dir, smol_tok, monkeypatch):
    from transformers import AutoModelForCausalLM

    seen = {}
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    model = mload.load_model(ModelConfig(base_model=str(tiny_model_dir), device_map="cpu"), smol_tok, dtype=torch.float32)
    assert seen["device_map"] == "cpu" and model.device.type == "cpu"


def test_bnb_config_kwargs_override_the_qlora_defaults():
    cfg = ModelConfig(load_in_4bit=True, bnb_config_kwargs={"bnb_4bit_quant_type": "fp4", "bnb_4bit_quant_storage": "bfloat16"})
    kwargs = mload.bnb_kwargs(cfg, torch.bfloat16)
    assert kwargs["bnb_4bit_quant_type"] == "fp4" and kwargs["bnb_4bit_use_double_quant"] is True
    assert kwargs["bnb_4bit_quant_storage"] == "bfloat16" and kwargs["bnb_4bit_compute_dtype"] is torch.bfloat16
    assert mload.bnb_kwargs(ModelConfig(load_in_8bit=True), torch.float32) == {"load_in_8bit": True}


def test_tokenizer_legacy_reaches_sentencepiece_tokenizers(mistral_tok_dir):
    text = "<s>hello</s> world"
    default = tokenizer_for(ModelConfig(base_model=str(mistral_tok_dir)))  # the fixture saves legacy: true
    legacy = tokenizer_for(ModelConfig(base_model=str(mistral_tok_dir), tokenizer_legacy=True))
    modern = tokenizer_for(ModelConfig(base_model=str(mistral_tok_dir), tokenizer_legacy=False))
    ids = [t(text, add_special_tokens=False)["input_ids"] for t in (default, legacy, modern)]
    assert ids[0] == ids[1] == [1, 6312, 28709, 2, 1526]
    assert ids[2] == [1, 21558, 2, 1526]  # no extra "▁" prefix after a special token
