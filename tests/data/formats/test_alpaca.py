"""`type: alpaca` (+ `:chat`, `:chatml`, `:phi`) and `alpaca_instruct`: token-exact with axolotl 0.21.0."""

from __future__ import annotations

import pytest
from instruct_golden.check import assert_matches_axolotl, masked_and_trained
from instruct_golden.rows import ALPACA, EDGE_ALPACA

from newtune.data.inspect import show
from newtune.data.rowcodec import encode_row

SYSTEM_NO_INPUT = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
SYSTEM = ("Below is an instruction that describes a task, paired with an input that provides further context. "
          "Write a response that appropriately completes the request.")


@pytest.mark.parametrize("case", ["alpaca", "alpaca_chat_style", "alpaca_chatml_style", "alpaca_phi_style",
                                  "alpaca_instruct", "alpaca_instruct_no_prompt", "alpaca_edge"])
def test_matches_axolotl(case, smol_tok, mistral_tok):
    assert_matches_axolotl(case, smol_tok, mistral_tok)


def test_alpaca_masks_the_prompt_and_trains_response_and_eos(smol_tok):
    enc = encode_row("alpaca", ALPACA[0], smol_tok)
    assert masked_and_trained(enc, smol_tok) == (
        SYSTEM_NO_INPUT + "\n\n### Instruction:\nName the largest planet.\n\n### Response:\n", "Jupiter.<|im_end|>")


def test_alpaca_with_input_uses_the_input_system_prompt(smol_tok):
    enc = encode_row("alpaca", ALPACA[1], smol_tok)
    assert masked_and_trained(enc, smol_tok) == (
        SYSTEM + "\n\n### Instruction:\nTranslate to French.\n\n### Input:\nGood morning\n\n### Response:\n",
        "Bonjour<|im_end|>")


def test_alpaca_chat_style_on_mistral_bos_and_eos(mistral_tok):
    enc = encode_row("alpaca:chat", ALPACA[1], mistral_tok)
    shown = show(enc, mistral_tok)
    assert shown.startswith("[<s> ▁SY STEM : ▁Below ▁is ")
    assert shown.endswith("<0x0A> Good ▁morning <0x0A> ASS IST ANT :] ▁Bon jour </s>")


def test_alpaca_chatml_style(smol_tok):
    enc = encode_row("alpaca:chatml", ALPACA[0], smol_tok)
    assert masked_and_trained(enc, smol_tok) == (
        f"<|im_start|>system\n{SYSTEM_NO_INPUT}<|im_end|>\n<|im_start|>user\nName the largest planet.<|im_end|>\n"
        "<|im_start|>assistant\n", "Jupiter.<|im_end|>")


def test_empty_output_gives_no_response_and_no_eos_like_axolotl(smol_tok):
    enc = encode_row("alpaca", ALPACA[2], smol_tok)
    masked, trained = masked_and_trained(enc, smol_tok)
    assert trained == ""
    assert masked.endswith("### Instruction:\nSay nothing.\n\n### Response:\n")


def test_train_on_inputs_trains_every_token(mistral_tok):
    enc = encode_row("alpaca", ALPACA[0], mistral_tok, train_on_inputs=True)
    assert enc["labels"] == enc["input_ids"]
    assert enc["input_ids"][0] == mistral_tok.bos_token_id and enc["input_ids"][-1] == mistral_tok.eos_token_id


def test_no_prompt_loader_drops_the_system_prompt(smol_tok):
    enc = encode_row("alpaca_instruct.load_no_prompt", ALPACA[0], smol_tok)
    assert masked_and_trained(enc, smol_tok) == (
        "### Instruction:\nName the largest planet.\n\n### Response:\n", "Jupiter.<|im_end|>")


def test_eos_or_bos_written_in_the_output_is_not_doubled(mistral_tok, smol_tok):
    assert show(encode_row("alpaca", EDGE_ALPACA[0], mistral_tok), mistral_tok).endswith("] ▁Yes . </s>")
    assert show(encode_row("alpaca", EDGE_ALPACA[3], mistral_tok), mistral_tok).endswith("] <s> ▁Hi </s>")
    assert masked_and_trained(encode_row("alpaca", EDGE_ALPACA[1], smol_tok), smol_tok)[1] == "Yes.<|im_end|>"
    assert masked_and_trained(encode_row("alpaca", EDGE_ALPACA[2], smol_tok), smol_tok)[1] == "Hi<|im_end|>"
