"""`type: pygmalion`: token-exact with axolotl 0.21.0 (each turn tokenized alone; only bot text trains)."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import PYGMALION

from newtune.data.inspect import show
from newtune.data.rowcodec import encode_row
from newtune.errors import DataError


@pytest.mark.parametrize("case", ["pygmalion", "pygmalion_edge"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_turns_and_masking(smol_tok):
    masked, trained = masked_and_trained(encode_row("pygmalion", PYGMALION[0], smol_tok), smol_tok)
    assert masked == ("<|system|>Persona: Tom is a cheerful baker.<|user|> What are you baking?<|model|>"
                      "<|user|> Can I have some?<|model|>")
    assert trained == " Sourdough, fresh from the oven!<|im_end|> Of course.<|im_end|>"


def test_train_on_inputs_is_ignored_like_axolotl(smol_tok):
    a = encode_row("pygmalion", PYGMALION[0], smol_tok)
    assert encode_row("pygmalion", PYGMALION[0], smol_tok, train_on_inputs=True) == a


def test_each_turn_is_tokenized_alone_on_mistral(mistral_tok):
    row = {"conversations": [{"role": "human", "value": "hi"}, {"role": "bot", "value": "yo"}]}
    enc = encode_row("pygmalion", row, mistral_tok)
    assert show(enc, mistral_tok) == "[▁< | user | > ▁hi ▁< | model | >] ▁yo </s>"


def test_unknown_role_is_an_error(smol_tok):
    with pytest.raises(DataError, match="unknown pygmalion role 'narrator'"):
        encode_row("pygmalion", {"conversations": [{"role": "narrator", "value": "x"}]}, smol_tok)
