"""`type: creative_acr.load_answer / .load_critique / .load_revise`: token-exact with axolotl 0.21.0."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import CREATIVE

from newtune.data.rowcodec import encode_row

EVALUATION = (
    "comprehensiveness: 4\ncreativity: 3\nprescriptive_bias: 9\nrefusal: 10\n"
    "comprehensiveness:\n  explanation: Very short.\n  improvements: Add sound and smell.\n"
    "creativity:\n  explanation: Plain wording.\n  improvements: Use imagery.\n"
    "prescriptive_bias:\n  explanation: No advice given.\n  improvements: Keep it so.\n"
    "refusal:\n  explanation: It answers.\n  improvements: None needed.\n"
)


@pytest.mark.parametrize("case", ["creative_acr_answer", "creative_acr_critique", "creative_acr_revise"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_answer_trains_the_revision(smol_tok):
    masked, trained = masked_and_trained(encode_row("creative_acr.load_answer", CREATIVE[0], smol_tok), smol_tok)
    assert masked.startswith("Answer the following question in a comprehensive, in-depth, and creative way.")
    assert masked.endswith("ambiguity.\nUSER: Describe rain to someone who has never seen it.\nASSISTANT:")
    assert trained == "Imagine the sky quietly letting go of a million cool beads.<|im_end|>"


def test_critique_trains_the_yaml_evaluation(smol_tok):
    masked, trained = masked_and_trained(encode_row("creative_acr.load_critique", CREATIVE[0], smol_tok), smol_tok)
    assert masked.startswith("USER: Given the following Question and Response, critique the Response")
    assert masked.endswith("Question: Describe rain to someone who has never seen it.\nAnswer: Water falls from clouds.\n"
                           "\nASSISTANT:")
    assert trained == EVALUATION + "<|im_end|>"


def test_revise_puts_the_evaluation_in_the_prompt(smol_tok):
    masked, trained = masked_and_trained(encode_row("creative_acr.load_revise", CREATIVE[0], smol_tok), smol_tok)
    assert masked.endswith("Evaluation:\n" + EVALUATION + "\n\nASSISTANT:")
    assert trained == "Imagine the sky quietly letting go of a million cool beads.<|im_end|>"
