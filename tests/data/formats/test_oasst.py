"""`type: oasst` (+ `:phi`): token-exact with axolotl 0.21.0."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import OASST

from newtune.data.rowcodec import encode_row


@pytest.mark.parametrize("case", ["oasst", "oasst_phi"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_phi_style(smol_tok):
    masked, trained = masked_and_trained(encode_row("oasst:phi", OASST[0], smol_tok), smol_tok)
    assert masked.startswith("<|system|>\nBelow is an instruction that describes a task.")
    assert masked.endswith("<|end|>\n<|user|>\nGive me a synonym for quick.<|end|>\n<|assistant|>\n")
    assert trained == "Rapid.<|im_end|>"
