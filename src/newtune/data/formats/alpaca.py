"""`type: alpaca` (optionally `alpaca:chat`, `:chatml`, `:phi`): instruction, input, output.

axolotl 0.21.0: AlpacaPrompter with the style after ':' (instruct when none), and its default
system prompts. `alpaca_instruct` is the same with the instruct style; `.load_no_prompt` drops the
system prompt.
"""

from __future__ import annotations

from newtune.config.data import DatasetConfig
from newtune.data.formats.instruct import prompt_response, style_name, text
from newtune.data.styles import Prompter, alpaca_prompter, style
from newtune.data.types import Format, FormatContext, Row, Segment


def alpaca_segments(row: Row, prompter: Prompter, ctx: FormatContext) -> list[Segment]:
    """The alpaca fields rendered by `prompter`, tokenized as axolotl does."""
    prompt = prompter.prompt(row["instruction"], text(row.get("input")))
    return prompt_response(prompt, text(row["output"]), ctx)


def alpaca(row: Row, ds: DatasetConfig, ctx: FormatContext) -> list[Segment]:
    return alpaca_segments(row, alpaca_prompter(style_name(ds, "instruct")), ctx)


def alpaca_instruct_no_prompt(row: Row, ds: DatasetConfig, ctx: FormatContext) -> list[Segment]:
    style_name(ds)
    return alpaca_segments(row, Prompter(style("instruct")), ctx)


TYPES = {
    "alpaca": Format(alpaca, "segments", "instruction/input/output; the style after ':' (default instruct)"),
    "alpaca_instruct": Format(alpaca, "segments", "alpaca with the instruct style"),
    "alpaca_instruct.load_no_prompt": Format(alpaca_instruct_no_prompt, "segments", "alpaca, instruct style, no system prompt"),
}
