"""`type: metharme`: token-exact with axolotl 0.21.0, three EOS after the generation."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import METHARME

from newtune.data.inspect import show
from newtune.data.rowcodec import encode_row


@pytest.mark.parametrize("case", ["metharme", "metharme_edge"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_generation_gets_three_eos(smol_tok):
    assert masked_and_trained(encode_row("metharme", METHARME[0], smol_tok), smol_tok) == (
        "<|system|>Enter roleplay mode.<|user|>Hello there.<|model|>", "Hi! Nice to meet you.<|im_end|><|im_end|><|im_end|>")


def test_empty_generation_depends_on_bos_like_axolotl(smol_tok, mistral_tok):
    # axolotl's metharme tokenizer tokenizes "" too: a BOS-adding tokenizer gives [BOS] → BOS stripped, 3 EOS added.
    assert masked_and_trained(encode_row("metharme", METHARME[1], smol_tok), smol_tok)[1] == ""
    enc = encode_row("metharme", METHARME[1], mistral_tok)
    assert show(enc, mistral_tok).endswith("model | >] </s> </s> </s>")
