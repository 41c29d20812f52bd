"""sharegpt, sharegpt.load_role, sharegpt.load_guanaco, sharegpt_jokes: the older axolotl types on the chat_template path.

axolotl 0.21.0 refuses every `type: sharegpt*` ("use chat_template instead"), so the reference here is the
same conversation written for `type: chat_template`, whose ids are axolotl-verified
(chat_template_axolotl.json, cases "mappings" and "ds_chatml").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newtune.config.data import DatasetConfig
from newtune.data.inspect import show
from newtune.data.rowcodec import encode_row
from newtune.errors import DataError

M = -100
GOLDEN = {c["name"]: c for c in json.loads((Path(__file__).parent / "chat_template_axolotl.json").read_text())["cases"]}
ROW = {"conversations": [{"from": "human", "value": "Hi!"}, {"from": "gpt", "value": "Hello."}]}
# <|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n
CHATML_IDS = [1, 4093, 198, 26843, 17, 2, 198, 1, 520, 9531, 198, 19556, 30, 2, 198]
CHATML_LABELS = [M] * 11 + [19556, 30, 2, M]


def ds(type_="sharegpt", **keys):
    return DatasetConfig(path="-", type=type_, **keys)


def test_sharegpt_equals_chat_template_with_from_value_mapping(smol_tok):
    expected = GOLDEN["mappings"]["expected"][0]  # axolotl: chat_template, {role: from, content: value}
    assert GOLDEN["mappings"]["rows"][0] == ROW
    assert encode_row(ds(), ROW, smol_tok) == expected


def test_conversation_chatml(smol_tok):
    enc = encode_row(ds(conversation="chatml"), ROW, smol_tok)
    assert enc == {"input_ids": CHATML_IDS, "labels": CHATML_LABELS}


def test_system_turn_and_train_on_inputs(smol_tok):
    row = {"conversations": [{"from": "system", "value": "Be brief."}, *ROW["conversations"]]}
    enc = encode_row(ds(conversation="chatml"), row, smol_tok, train_on_inputs=True)
    assert show(enc, smol_tok) == (
        "[<|im_start|> system Ċ] Be Ġbrief . <|im_end|> [Ċ <|im_start|> user Ċ] Hi ! <|im_end|> "
        "[Ċ <|im_start|> ass istant Ċ] Hello . <|im_end|> [Ċ]"
    )
    assert enc["input_ids"][:8] == [1, 9690, 198, 6077, 5453, 30, 2, 198]


def test_field_human_and_field_model(smol_tok):
    row = {"conversations": [{"from": "prompter", "value": "Hi!"}, {"from": "bot", "value": "Hello."}]}
    enc = encode_row(ds(conversation="chatml", field_human="prompter", field_model="bot"), row, smol_tok)
    assert enc == {"input_ids": CHATML_IDS, "labels": CHATML_LABELS}


def test_roles_input_and_output_keep_their_names(smol_tok):
    row = {"conversations": [{"from": "human", "value": "Hi!"}, {"from": "narrator", "value": "Later."},
                             {"from": "critic", "value": "Good."}]}
    enc = encode_row(ds(conversation="chatml", roles={"input": ["narrator"], "output": ["critic"]}), row, smol_tok)
    text = smol_tok.decode(enc["input_ids"])
    assert "<|im_start|>narrator\nLater.<|im_end|>" in text and "<|im_start|>critic\nGood.<|im_end|>" in text
    trained = smol_tok.decode([t for t in enc["labels"] if t != M])
    assert trained == "Good.<|im_end|>"


def test_load_role(smol_tok):
    row = {"conversations": [{"role": "human", "value": "Hi!"}, {"role": "gpt", "value": "Hello."}]}
    assert encode_row(ds("sharegpt.load_role", conversation="chatml"), row, smol_tok)["input_ids"] == CHATML_IDS


def test_load_guanaco(smol_tok):
    row = {"conversations": [{"role": "prompter", "text": "Hi!"}, {"role": "assistant", "text": "Hello."}]}
    enc = encode_row(ds("sharegpt.load_guanaco", conversation="chatml"), row, smol_tok)
    assert enc == {"input_ids": CHATML_IDS, "labels": CHATML_LABELS}


@pytest.mark.parametrize("row", [
    {"title": "Owls", "text": "Who? Who?", "explanation": "Owls hoot."},
    {"conversations": [{"title": "Owls", "text": "Who? Who?", "explanation": "Owls hoot."}]},
])
def test_jokes(smol_tok, row):
    enc = encode_row(ds("sharegpt_jokes", conversation="chatml"), row, smol_tok)
    assert smol_tok.decode(enc["input_ids"]) == (
        "<|im_start|>user\nTell me a joke.<|im_end|>\n<|im_start|>assistant\nOwls Who? Who?<|im_end|>\n"
        "<|im_start|>user\nWhy is that joke funny?<|im_end|>\n<|im_start|>assistant\nOwls hoot.<|im_end|>\n"
    )
    assert smol_tok.decode([t for t in enc["labels"] if t != M]) == "Owls Who? Who?<|im_end|>Owls hoot.<|im_end|>"


def test_unknown_from_value(smol_tok):
    row = {"conversations": [{"from": "narrator", "value": "x"}]}
    with pytest.raises(DataError, match=r"(?s)unknown role .narrator.; the role mapping is \{.human.: .user.*roles: \{input"):
        encode_row(ds(conversation="chatml"), row, smol_tok)


def test_unsupported_conversation_style(smol_tok):
    with pytest.raises(DataError, match="conversation style 'vicuna_v1.1' is not supported"):
        encode_row(ds(conversation="vicuna_v1.1"), ROW, smol_tok)


def test_turn_without_value(smol_tok):
    with pytest.raises(DataError, match=r"conversations\[1\] has no 'value' \(turn has: from, text\)"):
        encode_row(ds(), {"conversations": [ROW["conversations"][0], {"from": "gpt", "text": "x"}]}, smol_tok)
