"""Base model loading: embedded conversion (cached, atomic), HF dirs, missing paths, hub offline."""

from __future__ import annotations

import pytest

from newtune.config.model import ModelConfig
from newtune.errors import ModelError
from newtune.model import load as mload


def fake_convert(calls):
    def convert(gguf, out_dir):
        calls.append(out_dir)
        (out_dir / "model.safetensors").write_text("weights")
        (out_dir / "config.json").write_text("{}")
    return convert


def test_embedded_conversion_runs_once_and_leaves_no_temp(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWTUNE_CACHE", str(tmp_path))
    calls: list = []
    monkeypatch.setattr(mload, "convert_gguf", fake_convert(calls))
    first = mload.ensure_embedded_converted()
    second = mload.ensure_embedded_converted()
    assert first == second == tmp_path / "models" / "smollm2-135m-instruct"
    assert len(calls) == 1 and calls[0] != first  # written elsewhere, then renamed into place
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["smollm2-135m-instruct", "smollm2-135m-instruct.lock"]
    assert (first / "config.json").read_text() == "{}"


def test_failed_conversion_leaves_nothing_half_written(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWTUNE_CACHE", str(tmp_path))

    def broken(gguf, out_dir):
        (out_dir / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(mload, "convert_gguf", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        mload.ensure_embedded_converted()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["smollm2-135m-instruct.lock"]
    calls: list = []
    monkeypatch.setattr(mload, "convert_gguf", fake_convert(calls))
    assert (mload.ensure_embedded_converted() / "config.json").exists() and len(calls) == 1


def test_loads_local_hf_dir_with_same_weights(tiny_model_dir, smol_tok):
    import torch
    from safetensors.torch import load_file

    model = mload.load_model(ModelConfig(base_model=str(tiny_model_dir)), smol_tok, dtype=torch.float32)
    saved = load_file(tiny_model_dir / "model.safetensors")
    assert torch.equal(model.model.layers[1].mlp.up_proj.weight, saved["model.layers.1.mlp.up_proj.weight"])
    assert model.config._attn_implementation == "sdpa"
    assert model.get_input_embeddings().weight.shape[0] == len(smol_tok) == 49152


def test_grows_embeddings_for_added_tokens(tiny_model_dir, smol_tok_dir):
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_tok_dir)
    tok.add_tokens(["<|tool|>", "<|obs|>"], special_tokens=True)
    model = mload.load_model(ModelConfig(base_model=str(tiny_model_dir)), tok, dtype=torch.float32)
    assert model.get_input_embeddings().weight.shape[0] == 49154
    assert model.get_output_embeddings().weight.shape[0] == 49154


def test_missing_path_is_a_model_error(tmp_path, smol_tok):
    with pytest.raises(ModelError) as e:
        mload.load_model(ModelConfig(base_model=str(tmp_path / "nope")), smol_tok, dtype=None)
    assert e.value.where == "base_model" and e.value.problem == f"{tmp_path / 'nope'} not found"


def test_dir_without_config_is_a_model_error(tmp_path, smol_tok):
    with pytest.raises(ModelError, match="has no config.json"):
        mload.resolve_model_dir(ModelConfig(base_model=str(tmp_path)))


def test_hub_id_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as e:
        mload.resolve_model_dir(ModelConfig(base_model="no-such-org/no-such-model"))
    assert e.value.where == "base_model"
    assert e.value.problem.startswith("'no-such-org/no-such-model' is not a local path, and the model hub could not provide it")
    assert "HF_HUB_OFFLINE=1" in e.value.hint and "local directory" in e.value.hint


def test_attention_choice():
    assert mload.attention_kernel(ModelConfig()) == "sdpa"
    assert mload.attention_kernel(ModelConfig(attn_implementation="xformers")) == "sdpa"
    assert mload.attention_kernel(ModelConfig(attn_implementation="eager")) == "eager"


def test_flash_attention_without_gpu_or_package_is_clear():
    import importlib.util

    import torch

    if importlib.util.find_spec("flash_attn") and torch.cuda.is_available():
        pytest.skip("flash-attn and a GPU are present")
    with pytest.raises(ModelError) as e:
        mload.attention_kernel(ModelConfig(attn_implementation="flash_attention_2"))
    assert e.value.where == "attn_implementation" and "flash_attention_2 needs" in e.value.problem


@pytest.mark.slow
def test_embedded_model_answers(smol_tok):
    """The default model (user cache, converted once) loads and answers greedily like SmolLM2-135M-Instruct."""
    import torch

    model = mload.load_model(ModelConfig(), smol_tok, dtype=torch.float32)
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30
    assert not hasattr(model.config, "quantization_config")
    ids = smol_tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                       add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert smol_tok.decode(out[0, ids["input_ids"].shape[1]:]) == "The capital of France is Paris.<|im_end|>"


def test_missing_gguf_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError) as e:
        mload.resolve_model_dir(ModelConfig(base_model=str(tmp_path / "m.gguf")))
    assert e.value.problem == f"GGUF file {tmp_path / 'm.gguf'} not found"


def test_base_model_config_overrides_the_config(tiny_model_dir, smol_tok, tmp_path):
    import torch
    from transformers import AutoConfig

    conf = AutoConfig.from_pretrained(tiny_model_dir)
    conf.rms_norm_eps = 0.125
    conf.save_pretrained(tmp_path)
    model = mload.load_model(ModelConfig(base_model=str(tiny_model_dir), base_model_config=str(tmp_path)), smol_tok,
                             dtype=torch.float32)
    assert model.config.rms_norm_eps == 0.125
