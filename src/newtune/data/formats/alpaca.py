"""`type: alpaca` (optionally `alpaca:chat`, `:chatml`, `:phi`): instruction, input, output.

axolotl 0.21.0: AlpacaPrompter with the style after ':' (instruct when none), and its default
system prompts. `alpaca_instruct` is the same with the instruct style; `.load_no_prompt` drops the
system prompt.
"""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import StyledOptions, prompt_response
from newtune.data.styles import Prompter, alpaca_prompter, style
from newtune.data.types import Format, FormatContext, FormatOptions, Row, Segment


def alpaca_segments(row: Row, prompter: Prompter, ctx: FormatContext) -> list[Segment]:
    """The alpaca fields rendered by `prompter`, tokenized as axolotl does."""
    prompt = prompter.prompt_parts(rf.need(row, "instruction"), rf.opt(row, "input"))
    return prompt_response(prompt, rf.nullable(row, "output"), ctx)


def alpaca(row: Row, opts: StyledOptions, ctx: FormatContext) -> list[Segment]:
    return alpaca_segments(row, alpaca_prompter(opts.style or "instruct"), ctx)


def alpaca_instruct(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    return alpaca_segments(row, alpaca_prompter("instruct"), ctx)


def alpaca_instruct_no_prompt(row: Row, opts: StyledOptions, ctx: FormatContext) -> list[Segment]:
    return alpaca_segments(row, Prompter(style("instruct")), ctx)


TYPES = {
    "alpaca": Format(alpaca, "segments", StyledOptions, "instruction/input/output; the style after ':' (default instruct)",
                     prompt_field="instruction"),
    "alpaca_instruct": Format(alpaca_instruct, "segments", FormatOptions, "alpaca with the instruct style", prompt_field="instruction"),
    "alpaca_instruct.load_no_prompt": Format(alpaca_instruct_no_prompt, "segments", FormatOptions, "alpaca, instruct style, no system prompt",
                                             prompt_field="instruction"),
}
