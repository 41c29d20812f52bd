"""`type: orcamini`: token-exact with axolotl 0.21.0; the layout, and a null system prompt left empty."""

from __future__ import annotations

from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import OPEN_ORCA

from newtune.data.rowcodec import encode_row


def test_matches_axolotl(smol_tok, mistral_tok):
    assert_matches_axolotl("orcamini", smol_tok, mistral_tok)


def test_layout(smol_tok):
    enc = encode_row("orcamini", OPEN_ORCA[0], smol_tok)
    assert masked_and_trained(enc, smol_tok) == (
        "### System:\nYou are terse.\n\n### User:\nCapital of Peru?\n\n### Response:\n", "Lima.<|im_end|>")


def test_null_system_prompt_is_empty_not_none(smol_tok):
    row = {"system_prompt": None, "question": "Capital of Peru?", "response": "Lima."}
    prompt, _ = masked_and_trained(encode_row("orcamini", row, smol_tok), smol_tok)
    assert prompt == "### System:\n\n\n### User:\nCapital of Peru?\n\n### Response:\n"
