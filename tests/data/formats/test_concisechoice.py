"""`type: concisechoice`: token-exact with axolotl 0.21.0 (which ignores a `:style` suffix)."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import CONCISE

from newtune.data.rowcodec import encode_row


@pytest.mark.parametrize("case", ["concisechoice", "concisechoice_chatml"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_system_prompt_without_prefix_then_chat_turn(smol_tok):
    masked, trained = masked_and_trained(encode_row("concisechoice", CONCISE[0], smol_tok), smol_tok)
    assert masked == ("Choose the answer that best answers the question. Be concise in your response.\n\n"
                      'USER: Which gas do plants absorb?\n- "Oxygen"\n- "Carbon dioxide"\nASSISTANT:')
    assert trained == "Carbon dioxide<|im_end|>"
