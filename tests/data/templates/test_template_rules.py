"""Named templates in the pipeline: refused rows name the row, EOT checks, the turn-ending audit, config names."""

from __future__ import annotations

import json
import re

import pytest

from newtune.config.data import DatasetConfig
from newtune.config.load import load_config
from newtune.data.audit import turn_end_warnings
from newtune.data.pipeline import prepare
from newtune.data.rowcodec import encode_row
from newtune.errors import ConfigError, DataError

NOSYS = {"messages": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."}]}
SYS = {"messages": [{"role": "system", "content": "Be brief."}, *NOSYS["messages"]]}


def data_config(tmp_path, rows, **ds):
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {"datasets": [{"path": str(path), "type": "chat_template", **ds}], "dataset_prepared_path": str(tmp_path / "p")}
    return load_config(None, raw=raw).data


def test_gemma_refuses_a_system_turn_naming_the_row(tmp_path, smol_tok):
    data = data_config(tmp_path, [NOSYS, SYS], chat_template="gemma")
    with pytest.raises(DataError) as e:
        prepare(data, smol_tok, seed=0)
    assert str(e.value).startswith("chat.jsonl line 2 (chat_template): the chat template failed on this row: "
                                   "TemplateError: System role not supported")


def test_drop_system_message_lets_gemma_train_the_row(smol_tok):
    enc = encode_row(DatasetConfig(path="-", type="chat_template", chat_template="gemma", drop_system_message=True),
                     SYS, smol_tok)
    assert enc == encode_row(DatasetConfig(path="-", type="chat_template", chat_template="gemma"), NOSYS, smol_tok)


def test_multi_token_eot_token_says_to_add_it_under_tokens(smol_tok):
    ds = DatasetConfig(path="-", type="chat_template", chat_template="gemma", train_on_eot="turn")
    with pytest.raises(DataError, match=r"(?s)EOT token '<end_of_turn>' is encoded as \d+ tokens.*add it under `tokens:`"):
        encode_row(ds, NOSYS, smol_tok, eot_tokens=["<end_of_turn>"])


def test_tokenizer_default_fallback_to_any_named_template(mistral_tok, smol_tok):
    ds = DatasetConfig(path="-", type="chat_template", chat_template="tokenizer_default_fallback_llama3")
    text = mistral_tok.decode(encode_row(ds, NOSYS, mistral_tok)["input_ids"])
    assert text.startswith("<s>") and text.endswith(
        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        "Hello.<|eot_id|>")
    own = encode_row(DatasetConfig(path="-", type="chat_template"), NOSYS, smol_tok)
    assert encode_row(DatasetConfig(path="-", type="chat_template", chat_template="tokenizer_default_fallback_gemma"),
                      NOSYS, smol_tok) == own  # the tokenizer's own template comes first


@pytest.mark.parametrize("name, message", [
    ("lama3", "unknown chat template 'lama3' (did you mean 'llama3'?)"),
    ("tokenizer_default_fallback_jinja", "falls back to 'jinja', which is not a named template"),
    ("tokenizer_default_fallback_gemma9", "unknown chat template 'gemma9'"),
])
def test_bad_template_names(name, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, raw={"datasets": [{"path": "a", "type": "chat_template"}], "chat_template": name})


def test_gemma_default_warns_once_that_end_of_turn_is_not_trained(tmp_path, smol_tok):
    # axolotl's default trains EOS after each turn; gemma's turns end in <end_of_turn>, never EOS
    data = data_config(tmp_path, [NOSYS, NOSYS], chat_template="gemma")
    assert turn_end_warnings(data, smol_tok) == [
        "datasets[0]: the text that ends a trained turn, '<end_of_turn>', is not trained (the model will not learn "
        "to stop); set tokens: ['<end_of_turn>'] and eot_tokens: ['<end_of_turn>'] ('<end_of_turn>' is 7 tokens in "
        "this tokenizer), which trains it after each trained turn (train_on_eot, default: train_on_eos)"
    ]


@pytest.mark.parametrize("keys", [{"chat_template": "chatml"}, {"chat_template": "gemma", "train_on_eos": "none"},
                                  {"chat_template": "mistral_v1"}])
def test_no_warning_when_the_turn_end_is_trained_or_left_out_on_purpose(tmp_path, smol_tok, keys):
    assert turn_end_warnings(data_config(tmp_path, [NOSYS], **keys), smol_tok) == []


def test_the_fix_the_warning_names_trains_the_turn_end(tmp_path, smol_dir_with_tokens):
    tok, _ = smol_dir_with_tokens
    data = data_config(tmp_path, [NOSYS], chat_template="gemma")
    data = data.model_copy(update={"eot_tokens": ["<end_of_turn>"]})
    assert turn_end_warnings(data, tok) == []
    enc = encode_row(data.datasets[0], NOSYS, tok, eot_tokens=["<end_of_turn>"])
    trained = tok.decode([t for t, lab in zip(enc["input_ids"], enc["labels"], strict=True) if lab != -100])
    assert trained == "Hello.<end_of_turn>"


@pytest.fixture(scope="module")
def smol_dir_with_tokens(smol_tok_dir):
    from transformers import AutoTokenizer

    from newtune.data.tokenizer import add_tokens

    tok = AutoTokenizer.from_pretrained(smol_tok_dir)
    add_tokens(tok, ["<end_of_turn>"], special=False)
    return tok, smol_tok_dir
