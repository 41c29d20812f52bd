"""`type: alpaca_chat` and its loaders (.load_concise, .load_qa, .load_camel_ai): token-exact with axolotl 0.21.0."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import ALPACA, CAMEL, QA

from newtune.config.data import DatasetConfig
from newtune.data.rowcodec import encode_row
from newtune.errors import ConfigError

CONCISE_NO_INPUT = ("Below is an instruction from a USER that describes a task. The ASSISTANT writes a response that "
                    "appropriately and concisely completes the request.\n\n")


@pytest.mark.parametrize("case", ["alpaca_chat", "alpaca_chat_conversation", "alpaca_chat_concise", "alpaca_chat_qa",
                                  "alpaca_chat_camel_ai", "alpaca_chat_no_prompt"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_alpaca_chat_is_the_chat_style(smol_tok):
    enc = encode_row("alpaca_chat", ALPACA[0], smol_tok)
    assert masked_and_trained(enc, smol_tok) == (
        "SYSTEM: Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\nUSER: Name the largest planet.\nASSISTANT:", "Jupiter.<|im_end|>")


def test_conversation_key_picks_the_style(smol_tok):
    enc = encode_row(DatasetConfig(path="-", type="alpaca_chat", conversation="chatml"), ALPACA[0], smol_tok)
    assert masked_and_trained(enc, smol_tok)[0].startswith("<|im_start|>system\nBelow is an instruction")


def test_qa_and_camel_ai_fields(smol_tok):
    enc = encode_row("alpaca_chat.load_qa", QA[0], smol_tok)
    assert masked_and_trained(enc, smol_tok) == (
        "SYSTEM: " + CONCISE_NO_INPUT + "\nUSER: What do bees make?\nASSISTANT:", "Honey.<|im_end|>")
    enc = encode_row("alpaca_chat.load_camel_ai", CAMEL[0], smol_tok)
    assert masked_and_trained(enc, smol_tok)[1] == "Three lines, five-seven-five syllables.<|im_end|>"


def test_style_suffix_is_refused_like_axolotl(smol_tok):
    with pytest.raises(ConfigError, match=r"takes no .:chatml. prompt style; set `conversation: chatml` instead"):
        encode_row("alpaca_chat:chatml", ALPACA[0], smol_tok)


def test_config_check_refuses_a_style_on_types_without_one():
    from newtune.load import load_config

    with pytest.raises(ConfigError) as e:
        load_config(None, raw={"datasets": [{"path": "a.jsonl", "type": "alpaca_chat:chatml"},
                                            {"path": "a.jsonl", "type": "alpaca:chatml"}]})
    assert e.value.problems == ["datasets[0].type: type 'alpaca_chat' takes no ':chatml' prompt style (types that do: "
                                "alpaca, jeopardy, oasst, gpteacher, reflection, explainchoice, concisechoice, summarizetldr)"]
