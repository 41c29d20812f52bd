"""`type: context_qa` (+ .load_v2, .load_404): token-exact with axolotl 0.21.0."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import CONTEXT, CONTEXT_404, CONTEXT_V2

from newtune.data.rowcodec import encode_row

SYSTEM = "SYSTEM: Use the following contextual information to concisely answer the question.\n\n"


@pytest.mark.parametrize("case", ["context_qa", "context_qa_v2", "context_qa_404"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_article_and_question(smol_tok):
    assert masked_and_trained(encode_row("context_qa", CONTEXT[0], smol_tok), smol_tok) == (
        SYSTEM + "USER: Otters hold hands while sleeping.\n===\nWhy do otters hold hands?\nASSISTANT:",
        "To stay together.<|im_end|>")


def test_v2_plain_context_question_answer(smol_tok):
    assert masked_and_trained(encode_row("context_qa.load_v2", CONTEXT_V2[0], smol_tok), smol_tok) == (
        "Context: The bakery opens at 7.\nQuestion: When does it open?\n", "Answer: At 7.<|im_end|>")


def test_404_fixed_answer(smol_tok):
    masked, trained = masked_and_trained(encode_row("context_qa.load_404", CONTEXT_404[0], smol_tok), smol_tok)
    assert masked == SYSTEM + "USER: Cats sleep a lot.\n===\nHow fast can cats swim?\nASSISTANT:"
    assert trained.startswith("The context provided does not contain any information about your inquiry.")
