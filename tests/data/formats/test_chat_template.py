"""type: chat_template — token-exact with axolotl 0.21.0 on SmolLM2 (its own ChatML-like template) and Mistral v1.

The golden ids and labels in chat_template_axolotl.json come from axolotl 0.21.0 itself
(bench/axolotl_dump.py, one config per set of top-level keys); see its "about" line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newtune.config.data import DatasetConfig
from newtune.data.inspect import show
from newtune.data.rowcodec import encode_row
from newtune.errors import DataError, ModelError

M = -100
GOLDEN = json.loads((Path(__file__).parent / "chat_template_axolotl.json").read_text())["cases"]
SYS_ROW = {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi!"},
                        {"role": "assistant", "content": "Hello."}]}
CHAT = {"messages": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."}]}
MISTRAL_TEMPLATE = next(c for c in GOLDEN if c["name"] == "mistral_default")["top"]["chat_template_jinja"]


def ds(**keys):
    return DatasetConfig(path="-", type=keys.pop("type", "chat_template"), **keys)


@pytest.mark.parametrize("case", GOLDEN, ids=[c["name"] for c in GOLDEN])
def test_matches_axolotl(case, request):
    tok = request.getfixturevalue("smol_tok" if case["tokenizer"] == "smol" else "mistral_tok")
    for row, expected in zip(case["rows"], case["expected"], strict=True):
        enc = encode_row(DatasetConfig(path="-", **case["dataset"]), row, tok, **case["top"])
        assert enc["input_ids"] == expected["input_ids"]
        assert enc["labels"] == expected["labels"]


def test_smollm_trains_assistant_content_and_im_end_but_not_the_newline(smol_tok):
    enc = encode_row(ds(), SYS_ROW, smol_tok)
    assert show(enc, smol_tok) == (
        "[<|im_start|> system Ċ You Ġare Ġter se . <|im_end|> Ċ <|im_start|> user Ċ Hi ! <|im_end|> Ċ "
        "<|im_start|> ass istant Ċ] Hello . <|im_end|> [Ċ]"
    )
    assert enc["labels"][-4:] == [19556, 30, 2, M]


def test_mistral_token_straddling_template_space_is_trained(mistral_tok):
    # ' ' + content: SentencePiece's "▁Hello" starts on the template's space; axolotl trains it (overlap)
    enc = encode_row(ds(), CHAT, mistral_tok, chat_template="jinja", chat_template_jinja=MISTRAL_TEMPLATE)
    assert show(enc, mistral_tok) == "[<s> ▁[ INST ] ▁Hi ! ▁[ / INST ]] ▁Hello . </s>"


def test_chat_template_default_is_chat_template(smol_tok):
    assert encode_row(ds(type="chat_template.default"), SYS_ROW, smol_tok) == encode_row(ds(), SYS_ROW, smol_tok)


def test_jinja_template_from_a_file_path(mistral_tok, tmp_path):
    path = tmp_path / "mistral.jinja"
    path.write_text(MISTRAL_TEMPLATE)
    from_file = encode_row(ds(chat_template="jinja", chat_template_jinja=str(path)), CHAT, mistral_tok)
    inline = encode_row(ds(), CHAT, mistral_tok, chat_template="jinja", chat_template_jinja=MISTRAL_TEMPLATE)
    assert from_file == inline
    assert from_file["input_ids"] == [1, 733, 16289, 28793, 15359, 28808, 733, 28748, 16289, 28793, 22557, 28723, 2]


def test_dataset_template_wins_over_top_level(smol_tok):
    enc = encode_row(ds(chat_template="chatml"), CHAT, smol_tok, chat_template="jinja",
                     chat_template_jinja=MISTRAL_TEMPLATE)
    assert enc["input_ids"] == [1, 4093, 198, 26843, 17, 2, 198, 1, 520, 9531, 198, 19556, 30, 2, 198]


def test_tokenizer_default_without_a_template_is_an_error(mistral_tok):
    with pytest.raises(ModelError, match="tokenizer has no chat template"):
        encode_row(ds(), CHAT, mistral_tok)


def test_fallback_chatml_when_the_tokenizer_has_no_template(mistral_tok, smol_tok):
    enc = encode_row(ds(chat_template="tokenizer_default_fallback_chatml"), CHAT, mistral_tok)
    assert mistral_tok.decode(enc["input_ids"]) == "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"
    own = encode_row(ds(chat_template="tokenizer_default_fallback_chatml"), CHAT, smol_tok)
    assert own == encode_row(ds(), CHAT, smol_tok)  # the tokenizer's own template comes first


def test_default_system_message_fills_a_missing_system_turn(smol_tok):
    enc = encode_row(ds(chat_template="chatml"), CHAT, smol_tok, default_system_message="Be kind.")
    assert smol_tok.decode(enc["input_ids"]).startswith("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user")
    kept = encode_row(ds(chat_template="chatml"), SYS_ROW, smol_tok, default_system_message="Be kind.")
    assert "You are terse." in smol_tok.decode(kept["input_ids"])


def test_drop_system_then_default_system_message_replaces_it(smol_tok):
    enc = encode_row(ds(chat_template="chatml", drop_system_message=True), SYS_ROW, smol_tok,
                     default_system_message="Be kind.")
    text = smol_tok.decode(enc["input_ids"])
    assert text.startswith("<|im_start|>system\nBe kind.<|im_end|>") and "terse" not in text


def test_messages_as_json_string(smol_tok):
    assert encode_row(ds(), {"messages": json.dumps(SYS_ROW["messages"])}, smol_tok) == encode_row(ds(), SYS_ROW, smol_tok)


def test_missing_messages_field_names_field_and_row_keys(smol_tok):
    with pytest.raises(DataError, match=r"missing field 'messages' \(row has: conversations, id\)"):
        encode_row(ds(), {"conversations": [], "id": 3}, smol_tok)


def test_custom_field_messages_missing(smol_tok):
    with pytest.raises(DataError, match=r"missing field 'chat' \(row has: messages\)"):
        encode_row(ds(field_messages="chat"), SYS_ROW, smol_tok)


def test_unknown_role_names_role_and_mapping(smol_tok):
    with pytest.raises(DataError, match=r"unknown role 'bot'.*'gpt': 'assistant'"):
        encode_row(ds(), {"messages": [{"role": "bot", "content": "x"}]}, smol_tok)


def test_roles_map_accepts_targets_and_aliases_only(smol_tok):
    keys = {"roles": {"user": ["human"], "assistant": ["bot"]}}
    row = {"messages": [{"role": "human", "content": "Hi!"}, {"role": "bot", "content": "Hello."}]}
    assert encode_row(ds(**keys), row, smol_tok) == encode_row(ds(), CHAT, smol_tok)
    with pytest.raises(DataError, match=r"unknown role 'gpt'; the role mapping is \{'user': 'user'"):
        encode_row(ds(**keys), {"messages": [{"role": "gpt", "content": "x"}]}, smol_tok)


def test_conflicting_legacy_role_field(smol_tok):
    with pytest.raises(DataError, match="conflicts with message_property_mappings.role"):
        encode_row(ds(message_field_role="from", message_property_mappings={"role": "speaker"}), CHAT, smol_tok)


def test_template_failure_is_a_data_error(smol_tok):
    with pytest.raises(DataError, match="the chat template failed on this row: TemplateError: only users"):
        encode_row(ds(chat_template="jinja", chat_template_jinja="{{ raise_exception('only users') }}"), CHAT, smol_tok)


def test_trained_message_missing_from_the_render_is_an_error(smol_tok):
    drops_assistant = "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}{% endif %}{% endfor %}"
    with pytest.raises(DataError, match=r"message 1 \(assistant\) does not appear in the text"):
        encode_row(ds(chat_template="jinja", chat_template_jinja=drops_assistant), CHAT, smol_tok)
