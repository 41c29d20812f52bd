"""Checkpoint artifacts: resolved config, tokenizer with the training template, prompt_format.json."""

from __future__ import annotations

import json

import yaml

from newtune.export.artifacts import describe_prompt_format, save_artifacts
from newtune.load import load_config


def cfg_with(**keys):
    return load_config(None, raw={"datasets": [{"path": "d.jsonl", **keys}]})


def test_alpaca_prompt_format_finds_the_instruction_field(smol_tok):
    fmt = describe_prompt_format(cfg_with(type="alpaca").data, smol_tok)
    assert fmt == {"kind": "instruct", "type": "alpaca", "prompt_field": "instruction",
                   "dataset": {"path": "d.jsonl", "type": "alpaca"}}


def test_other_instruct_types_find_their_prompt_field(smol_tok):
    assert describe_prompt_format(cfg_with(type="alpaca_chat.load_qa").data, smol_tok)["prompt_field"] == "question"
    assert describe_prompt_format(cfg_with(type="alpaca_chat.load_camel_ai").data, smol_tok)["prompt_field"] == "message_1"
    user = cfg_with(type={"field_instruction": "q", "field_output": "a", "format": "Q: {instruction}\nA: ",
                          "no_input_format": "Q: {instruction}\nA: "})
    assert describe_prompt_format(user.data, smol_tok)["prompt_field"] == "q"


def test_raw_types(smol_tok):
    assert describe_prompt_format(cfg_with(type="completion").data, smol_tok) == {"kind": "raw", "type": "completion"}
    assert describe_prompt_format(cfg_with(type="input_output").data, smol_tok) == {"kind": "raw", "type": "input_output"}


def test_save_artifacts_writes_config_tokenizer_and_format(tmp_path, smol_tok_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_tok_dir)
    cfg = load_config(None, raw={"datasets": [{"path": "d.jsonl", "type": "alpaca"}], "learning_rate": 1e-3})
    save_artifacts(tmp_path, cfg, tok)
    assert yaml.safe_load((tmp_path / "newtune.yml").read_text()) == cfg.flat()
    assert json.loads((tmp_path / "prompt_format.json").read_text())["kind"] == "instruct"
    assert AutoTokenizer.from_pretrained(tmp_path).get_vocab() == tok.get_vocab()
    assert not list(tmp_path.glob(".tmp-*"))


def test_chat_template_saved_with_the_tokenizer(tmp_path, mistral_tok_dir):
    """A tokenizer without a template trained with chat_template: chatml keeps ChatML for inference."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(mistral_tok_dir)
    cfg = load_config(None, raw={"datasets": [{"path": "d.jsonl", "type": "chat_template"}], "chat_template": "chatml"})
    fmt = save_artifacts(tmp_path, cfg, tok)
    assert fmt == {"kind": "chat", "type": "chat_template", "system": None, "stop": ["</s>"]}  # EOS: no <|im_end|> token
    saved = AutoTokenizer.from_pretrained(tmp_path)
    text = saved.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_tokenizer_default_template_and_system(smol_tok):
    cfg = load_config(None, raw={"datasets": [{"path": "d.jsonl", "type": "chat_template"}],
                                 "default_system_message": "Be brief."})
    fmt = describe_prompt_format(cfg.data, smol_tok)
    assert fmt.pop("template") == smol_tok.chat_template
    assert fmt == {"kind": "chat", "type": "chat_template", "system": "Be brief.", "stop": ["<|im_end|>"]}


def test_saving_leaves_the_live_tokenizer_template_alone(tmp_path, mistral_tok_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(mistral_tok_dir)
    before = tok.chat_template
    cfg = load_config(None, raw={"datasets": [{"path": "d.jsonl", "type": "chat_template"}], "chat_template": "chatml"})
    save_artifacts(tmp_path, cfg, tok)
    assert tok.chat_template == before and "<|im_start|>" in AutoTokenizer.from_pretrained(tmp_path).chat_template
