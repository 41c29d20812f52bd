"""`type: jeopardy` (+ `:chat`): token-exact with axolotl 0.21.0."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import JEOPARDY

from newtune.data.rowcodec import encode_row


@pytest.mark.parametrize("case", ["jeopardy", "jeopardy_chat"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_category_is_the_input_and_answer_is_prefixed(smol_tok):
    masked, trained = masked_and_trained(encode_row("jeopardy:chat", JEOPARDY[0], smol_tok), smol_tok)
    assert masked.endswith("USER: This red planet is fourth from the sun.\nSPACE\nASSISTANT:")
    assert trained == "what is Mars<|im_end|>"
