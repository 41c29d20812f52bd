"""type: chat_template — golden ids and labels from axolotl 0.21.0 (bench/axolotl_dump.py) on real tokenizers."""

from __future__ import annotations

import pytest

from newtune.config.data import DatasetConfig
from newtune.data.rowcodec import encode_row
from newtune.errors import DataError

M = -100


def ds(**keys):
    return DatasetConfig(path="-", type=keys.pop("type", "chat_template"), **keys)


def test_smollm_own_template_trains_assistant_and_im_end_not_newline(smol_tok):
    row = {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi!"},
                        {"role": "assistant", "content": "Hello."}]}
    enc = encode_row(ds(), row, smol_tok)
    # axolotl 0.21.0, chat_template: tokenizer_default
    assert enc["input_ids"] == [1, 9690, 198, 2683, 359, 1733, 313, 30, 2, 198, 1, 4093, 198, 26843, 17, 2, 198,
                                1, 520, 9531, 198, 19556, 30, 2, 198]
    assert enc["labels"] == [M] * 21 + [19556, 30, 2, M]


def test_smollm_template_injects_its_default_system_message(smol_tok):
    row = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
                        {"role": "user", "content": "And 3+3?"}, {"role": "assistant", "content": "6"}]}
    enc = encode_row(ds(), row, smol_tok)
    ids, labels = enc["input_ids"], enc["labels"]
    assert ids[:21] == [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411,
                        407, 19712, 8182, 2, 198]
    assert [(i, t) for i, t in zip(ids, labels, strict=True) if t != M] == [(36, 36), (2, 2), (38, 38), (2, 2)]


def test_missing_messages_field_names_field_and_row_keys(smol_tok):
    with pytest.raises(DataError, match=r"missing field 'messages' \(row has: conversations, id\)"):
        encode_row(ds(), {"conversations": [], "id": 3}, smol_tok)


def test_unknown_role_names_role_and_mapping(smol_tok):
    with pytest.raises(DataError, match=r"unknown role 'bot'.*'gpt': 'assistant'"):
        encode_row(ds(), {"messages": [{"role": "bot", "content": "x"}]}, smol_tok)
