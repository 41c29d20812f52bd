"""Every named chat template newtune ships, token for token against axolotl 0.21.0 on the SmolLM2 tokenizer.

axolotl_golden.json comes from axolotl itself (bench/axolotl_chat_golden.py; its "about" line names the
versions): per template, multi-turn rows with and without a system turn under the default rule,
roles_to_train + train_on_eos all, train_on_eos last, and train_on_eot all/last with each template's own
turn-ending token as eot_tokens (added with `tokens:`). SmolLM2 has none of these templates' special tokens
(<start_of_turn>, <|eot_id|>, [INST], ...), so they are tokenized as plain text, as axolotl does.
A row axolotl refuses (gemma's system turn) must be refused by newtune too. Reasoning and tool rows
(reasoning_content, split_thinking, template_thinking_key, tools and tool calls with JSON-string arguments,
`messages` stored as a JSON string, chat_template_kwargs) are checked the same way. Where axolotl 0.21.0
ignores a key (field_thinking, field_tools), newtune's row with the key is checked against axolotl's row
with the field under its default name ("newtune" in the case).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newtune.config.data import NAMED_TEMPLATES, DatasetConfig
from newtune.data.chat import TEMPLATES_DIR
from newtune.data.rowcodec import encode_row
from newtune.errors import DataError

GOLDEN = json.loads((Path(__file__).parent / "axolotl_golden.json").read_text(encoding="utf-8"))
SHIPPED = set(NAMED_TEMPLATES) | {"jinja"}
CASES = [c for c in GOLDEN["cases"] if c["dataset"]["chat_template"] in SHIPPED]
# axolotl keeps only the message fields its template analyzer finds; exaone4 reads `msg = messages[i]`, so
# axolotl drops tool_calls and reasoning_content there and renders neither. newtune passes every field.
DROPPED_BY_AXOLOTL = {"exaone4/tools": '<tool_call>{"name": "get_weather"',
                      "exaone4/tools_json_strings": '<tool_call>{"name": "get_weather"',
                      "exaone4/field_tools": '<tool_call>{"name": "get_weather"',
                      "exaone4/reasoning_skip_think_false": "<think>\nTwo plus two.\n</think>"}
# gemma4 reads message fields with .get(), which axolotl's analyzer misses: it drops a tool message's name and
# tool_call_id (the template then fails on a None name) and reasoning_content. newtune renders them.
GEMMA_TOOL_RESULT = '<|tool_response>response:get_weather{value:<|"|>18C<|"|>}<tool_response|>'
AXOLOTL_FAILS = {f"gemma4/{c}": GEMMA_TOOL_RESULT for c in ("tools", "tools_json_strings", "field_tools")}
GEMMA_THOUGHT = "<|channel>thought\nThe user wants the weather.\n<channel|>"
EXTRA_IN_NEWTUNE = {f"{t}/{c}": GEMMA_THOUGHT for t in ("gemma4", "gemma4_unified")
                    for c in ("tool_responses", "tool_responses_users_eos_all")}


class FixedDate:
    """The date axolotl rendered with (llama3_2_vision and mistral_v7_tekken print today's date)."""

    @staticmethod
    def now(tz=None):
        import datetime

        return datetime.datetime(2026, 1, 15, 12, 0, 0)


@pytest.fixture
def fixed_date(monkeypatch):
    import newtune.data.jinja as ctu

    monkeypatch.setattr(ctu, "datetime", FixedDate)


@pytest.fixture(scope="session")
def tok_with_tokens(smol_tok_dir):
    """SmolLM2 with the templates' turn-ending tokens added, as `tokens:` does."""
    from transformers import AutoTokenizer

    from newtune.data.tokenizer import add_tokens

    tok = AutoTokenizer.from_pretrained(smol_tok_dir)
    tokens = next(c["top"]["tokens"] for c in GOLDEN["cases"] if c["top"].get("tokens"))
    add_tokens(tok, tokens, special=False)
    return tok


def test_golden_covers_every_named_template_under_every_rule():
    assert GOLDEN["about"].startswith("axolotl 0.21.0")
    rules = {}
    for c in CASES:
        rules.setdefault(c["dataset"]["chat_template"], set()).add(c["name"].split("/")[1])
    expected = {"default", "users_eos_all", "eos_last", "eot_all", "eot_last"}
    assert {n for n in NAMED_TEMPLATES if not expected <= rules.get(n, set())} == set()
    assert sorted(p.stem for p in TEMPLATES_DIR.glob("*.jinja")) == sorted(NAMED_TEMPLATES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_axolotl(case, smol_tok, tok_with_tokens, fixed_date):
    tok = tok_with_tokens if case["top"].get("tokens") else smol_tok
    top = {k: v for k, v in case["top"].items() if k != "tokens"}
    ours = case.get("newtune", case)
    ds = DatasetConfig(path="-", **ours["dataset"])
    for row, expected in zip(ours["rows"], case["expected"], strict=True):
        if case["name"] in AXOLOTL_FAILS:
            assert "error" in expected and AXOLOTL_FAILS[case["name"]] in tok.decode(encode_row(ds, row, tok, **top)["input_ids"])
            continue
        if "error" in expected:
            with pytest.raises(DataError):
                encode_row(ds, row, tok, **top)
            continue
        enc = encode_row(ds, row, tok, **top)
        if case["name"] in DROPPED_BY_AXOLOTL:
            marker = DROPPED_BY_AXOLOTL[case["name"]]
            assert marker in tok.decode(enc["input_ids"]) and marker not in expected["text"]
            continue
        if case["name"] in EXTRA_IN_NEWTUNE:  # the rest is axolotl's text, byte for byte
            text = tok.decode(enc["input_ids"])
            assert EXTRA_IN_NEWTUNE[case["name"]] in text and text.replace(EXTRA_IN_NEWTUNE[case["name"]], "") == expected["text"]
            continue
        assert tok.decode(enc["input_ids"]) == expected["text"]
        assert enc["input_ids"] == expected["input_ids"]
        assert enc["labels"] == expected["labels"]
