"""LightTokenizer gives transformers' ids without importing it; tokenizer_for applies the config's tokens."""

from __future__ import annotations

import pytest

from newtune.data.tokenizer import LightTokenizer, fingerprint, load_tokenizer, tokenizer_for
from newtune.load import load_config

TEXTS = ["Hello world", " leading space", "<|im_start|>user\nhi<|im_end|>\n", "ünïcode 日本語 🙂", "a  b\t\tc\n\n", ""]


def test_light_tokenizer_matches_transformers(smol_tok_dir, smol_tok):
    assert LightTokenizer.can_load(smol_tok_dir)
    light = load_tokenizer(str(smol_tok_dir), light=True)
    assert isinstance(light, LightTokenizer)
    for sp in (True, False):
        a = light(TEXTS, add_special_tokens=sp, return_offsets_mapping=True)
        b = smol_tok(TEXTS, add_special_tokens=sp, return_offsets_mapping=True)
        assert a["input_ids"] == b["input_ids"]
        assert [[tuple(o) for o in row] for row in a["offset_mapping"]] == [[tuple(o) for o in row] for row in b["offset_mapping"]]
    ids = smol_tok(TEXTS[2])["input_ids"]
    assert ids == [1, 4093, 198, 6004, 2, 198]
    assert light.decode(ids) == smol_tok.decode(ids) == TEXTS[2]
    assert light.convert_ids_to_tokens(ids) == smol_tok.convert_ids_to_tokens(ids)
    for name in ("bos_token", "eos_token", "pad_token", "unk_token", "bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(light, name) == getattr(smol_tok, name), name
    assert light.special_tokens_map == smol_tok.special_tokens_map
    assert light.chat_template == smol_tok.chat_template
    assert len(light) == len(smol_tok) == 49152
    assert fingerprint(light) == fingerprint(smol_tok)


def test_fingerprint_changes_with_template_and_specials(smol_tok_dir):
    a = load_tokenizer(str(smol_tok_dir), light=True)
    b = load_tokenizer(str(smol_tok_dir), light=True)
    assert fingerprint(a) == fingerprint(b)
    b.chat_template = "{{ messages }}"
    assert fingerprint(a) != fingerprint(b)
    c = load_tokenizer(str(smol_tok_dir), light=True)
    c.set_special("pad_token", "<|endoftext|>")
    assert fingerprint(a) != fingerprint(c)


@pytest.mark.parametrize("light", [True, False])
def test_tokenizer_for_applies_special_tokens_and_tokens(smol_tok_dir, light):
    cfg = load_config(None, raw={"base_model": str(smol_tok_dir), "datasets": [{"path": "x.jsonl", "type": "completion"}],
                                 "special_tokens": {"pad_token": "<pad>"}, "tokens": ["<think>"]})
    tok = tokenizer_for(cfg.model, light=light)
    assert tok.pad_token == "<pad>" and tok.pad_token_id == 49152
    assert tok.convert_tokens_to_ids("<think>") == 49153
    assert tok("a<think>b", add_special_tokens=False)["input_ids"] == [81, 49153, 82]
    assert len(tok) == 49154


def test_tokenizer_for_sets_a_missing_pad_token_to_eos(mistral_tok_dir):
    cfg = load_config(None, raw={"base_model": str(mistral_tok_dir), "datasets": [{"path": "x.jsonl", "type": "completion"}]})
    tok = tokenizer_for(cfg.model, light=True)  # a SentencePiece directory: loaded by transformers
    assert not isinstance(tok, LightTokenizer)
    assert tok.pad_token == "</s>" and tok.pad_token_id == 2


def test_light_tokenizer_memo_is_exact_across_clears(smol_tok_dir, smol_tok, monkeypatch):
    from newtune.data import tokenizer as tokmod

    monkeypatch.setattr(tokmod, "MEMO_SIZE", 3)
    light = load_tokenizer(str(smol_tok_dir), light=True)
    batches = [[f"text {i}", "<|im_end|>", f"text {i}", " same"] for i in range(6)]
    for texts in batches:
        got = light(texts, add_special_tokens=False)["input_ids"]
        assert got == smol_tok(texts, add_special_tokens=False)["input_ids"]
        got[0].append(-1)  # callers own their lists
    assert light("text 5", add_special_tokens=False)["input_ids"] == smol_tok("text 5", add_special_tokens=False)["input_ids"]


@pytest.mark.slow
def test_gguf_tokenizer_is_converted_once_then_light(tmp_path, monkeypatch, smol_tok):
    from newtune import embedded

    monkeypatch.setenv("NEWTUNE_CACHE", str(tmp_path))
    first = load_tokenizer(str(embedded.gguf_path()), light=True)  # converted by transformers, saved
    second = load_tokenizer(str(embedded.gguf_path()), light=True)
    assert not isinstance(first, LightTokenizer) and isinstance(second, LightTokenizer)
    assert [p.parent.name for p in tmp_path.glob("tokenizers/*/tokenizer.json")] != []
    assert second(TEXTS, add_special_tokens=False)["input_ids"] == smol_tok(TEXTS, add_special_tokens=False)["input_ids"]
    assert fingerprint(second) == fingerprint(first) == fingerprint(smol_tok)


def test_a_sentencepiece_dir_is_converted_once_then_loaded_light(mistral_tok_dir, tmp_path, monkeypatch):
    """Mistral's tokenizer.model with add_bos_token: transformers builds it once; later loads are
    LightTokenizer with the same ids (BOS added by the saved post-processor), offsets and fingerprint."""
    monkeypatch.setenv("NEWTUNE_CACHE", str(tmp_path))
    first = load_tokenizer(str(mistral_tok_dir), light=True)
    assert not isinstance(first, LightTokenizer)
    light = load_tokenizer(str(mistral_tok_dir), light=True)
    assert isinstance(light, LightTokenizer)
    texts = [*TEXTS, "<s>Hello\n", "hi there!. </s>", "[INST] x [/INST]"]
    for sp in (True, False):
        a = light(texts, add_special_tokens=sp, return_offsets_mapping=True)
        b = first(texts, add_special_tokens=sp, return_offsets_mapping=True)
        assert a["input_ids"] == b["input_ids"], sp
        assert [[tuple(o) for o in r] for r in a["offset_mapping"]] == [[tuple(o) for o in r] for r in b["offset_mapping"]]
    assert light("Hello")["input_ids"][0] == light.bos_token_id == 1
    assert fingerprint(light) == fingerprint(first)
