"""Prompt styles: axolotl 0.21.0's format strings for instruct, chat, chatml and phi."""

from __future__ import annotations

import pytest

from newtune.data.styles import STYLES, Prompter, PromptStyle, alpaca_prompter, style
from newtune.errors import ConfigError


def test_style_names():
    assert STYLES == ("instruct", "chat", "chatml", "phi")


@pytest.mark.parametrize(("name", "with_input", "without_input"), [
    ("instruct", "S\n\n### Instruction:\nI\n\n### Input:\nX\n\n### Response:\n", "S\n\n### Instruction:\nI\n\n### Response:\n"),
    ("chat", "SYSTEM: S\nUSER: I\nX\nASSISTANT:", "SYSTEM: S\nUSER: I\nASSISTANT:"),
    ("chatml", "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nI\nX<|im_end|>\n<|im_start|>assistant\n",
     "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nI<|im_end|>\n<|im_start|>assistant\n"),
    ("phi", "<|system|>\nS<|end|>\n<|user|>\nI<|end|>X<|assistant|>", "<|system|>\nS<|end|>\n<|user|>\nI<|end|>\n<|assistant|>\n"),
])
def test_render(name, with_input, without_input):
    assert style(name).render("I", "X", "S") == with_input
    assert style(name).render("I", "", "S") == without_input


def test_empty_or_missing_system_is_left_out():
    assert style("chat").render("I", "", "") == "USER: I\nASSISTANT:"
    assert style("chat").render("I", "", None) == "USER: I\nASSISTANT:"


def test_prompter_picks_the_system_prompt_by_input():
    p = Prompter(style("chat"), system="with input", system_no_input="without")
    assert p.prompt("I", "X") == "SYSTEM: with input\nUSER: I\nX\nASSISTANT:"
    assert p.prompt("I") == "SYSTEM: without\nUSER: I\nASSISTANT:"
    assert alpaca_prompter("chat").prompt("I").startswith("SYSTEM: Below is an instruction that describes a task. Write")


def test_values_with_braces_are_not_reparsed():
    assert PromptStyle("<{instruction}>", "<{instruction}>").render("{input}") == "<{input}>"


def test_bad_format_string_is_a_config_error():
    with pytest.raises(ConfigError, match=r"format: cannot fill '\{instruction\} \{0\}'"):
        PromptStyle("{instruction} {0}", "{instruction}").render("I", "X")
    with pytest.raises(ConfigError, match="unknown prompt style 'vicuna'"):
        style("vicuna")
