"""`type: explainchoice` (+ `:chat`): token-exact with axolotl 0.21.0."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import CHOICE

from newtune.data.rowcodec import encode_row


@pytest.mark.parametrize("case", ["explainchoice", "explainchoice_chat"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_choices_become_quoted_lines(smol_tok):
    masked, trained = masked_and_trained(encode_row("explainchoice", CHOICE[0], smol_tok), smol_tok)
    assert masked == ("Choose the answer that best answers the question. Explain your reasoning.\n\n\n"
                      "### Instruction:\nWhich is a mammal?\n\n### Input:\n"
                      '- "Shark"\n- "Dolphin"\n- "Trout"\n\n### Response:\n')
    assert trained == "Dolphins breathe air.<|im_end|>"
