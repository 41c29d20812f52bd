"""`type: alpaca_w_system` (+ .load_instruct, .load_open_orca, .load_open_orca_chatml): token-exact with axolotl 0.21.0."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import OPEN_ORCA, W_SYSTEM

from newtune.data.rowcodec import encode_row


@pytest.mark.parametrize("case", ["alpaca_w_system", "alpaca_w_system_instruct", "alpaca_w_system_open_orca",
                                  "alpaca_w_system_open_orca_chatml"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_row_system_prompt_in_chat_style(smol_tok):
    enc = encode_row("alpaca_w_system", W_SYSTEM[0], smol_tok)
    assert masked_and_trained(enc, smol_tok) == (
        "SYSTEM: You answer in one word.\nUSER: Colour of the sky?\nASSISTANT:", "Blue<|im_end|>")


def test_empty_system_is_left_out(smol_tok):
    enc = encode_row("alpaca_w_system", W_SYSTEM[1], smol_tok)
    assert masked_and_trained(enc, smol_tok) == ("USER: Add the numbers.\n2 and 3\nASSISTANT:", "5<|im_end|>")


def test_open_orca(smol_tok):
    enc = encode_row("alpaca_w_system.load_open_orca", OPEN_ORCA[0], smol_tok)
    assert masked_and_trained(enc, smol_tok) == (
        "### System:\nYou are terse.\n### Human:\nCapital of Peru?\n### Assistant:\n", "Lima.<|im_end|>")
