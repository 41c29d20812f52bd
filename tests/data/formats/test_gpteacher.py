"""`type: gpteacher` (+ `:chatml`): token-exact with axolotl 0.21.0."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import GPTEACHER

from newtune.data.rowcodec import encode_row


@pytest.mark.parametrize("case", ["gpteacher", "gpteacher_chatml"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_response_field_and_input(smol_tok):
    masked, trained = masked_and_trained(encode_row("gpteacher", GPTEACHER[0], smol_tok), smol_tok)
    assert masked.endswith("### Instruction:\nRewrite politely.\n\n### Input:\nClose the door.\n\n### Response:\n")
    assert trained == "Could you close the door, please?<|im_end|>"
