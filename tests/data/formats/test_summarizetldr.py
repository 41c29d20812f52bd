"""`type: summarizetldr`: token-exact with axolotl 0.21.0."""

from __future__ import annotations

from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import TLDR

from newtune.data.rowcodec import encode_row


def test_matches_axolotl(smol_tok, mistral_tok):
    assert_matches_axolotl("summarizetldr", smol_tok, mistral_tok)


def test_tldr_prompt(smol_tok):
    assert masked_and_trained(encode_row("summarizetldr", TLDR[0], smol_tok), smol_tok) == (
        "USER: Summarize the following article as a TL;DR.\n"
        "The town fair opened on Friday with rides, food stalls and a pie contest.\nASSISTANT:",
        "Town fair opens.<|im_end|>")
