"""`type: reflection` (+ `:instruct`, `:chat`): token-exact with axolotl 0.21.0."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import REFLECTION

from newtune.data.rowcodec import encode_row


@pytest.mark.parametrize("case", ["reflection", "reflection_instruct", "reflection_chat", "reflection_edge"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_without_style_there_is_no_system_prompt(smol_tok):
    assert masked_and_trained(encode_row("reflection", REFLECTION[0], smol_tok), smol_tok) == (
        "### Instruction:\nWhy is ice slippery?\n\n### Response:\n",
        "### Thought:\nA thin water layer.\n\n### Agent Reflection:\nPressure melting is only part of it.\n\n"
        "### Final Response:\nSurface molecules stay mobile.<|im_end|>")


def test_chat_style_with_system_prompt(smol_tok):
    masked, trained = masked_and_trained(encode_row("reflection:chat", REFLECTION[0], smol_tok), smol_tok)
    assert masked.startswith("Below is an instruction that describes a task. You, the Assistant, should generate")
    assert masked.endswith("generation\n\nUSER: Why is ice slippery?\nASSISTANT:")
    assert trained == ("\nTHOUGHT: A thin water layer.\nASSISTANT REFLECTION: Pressure melting is only part of it."
                       "\nASSISTANT:<|im_end|>")


def test_missing_reflection_leaves_only_eos_trained(smol_tok):
    assert masked_and_trained(encode_row("reflection", REFLECTION[1], smol_tok), smol_tok) == (
        "### Instruction:\nSum these.\n\n### Input:\n1, 2\n\n### Response:\n", "<|im_end|>")
