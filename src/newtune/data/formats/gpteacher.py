"""`type: gpteacher`: instruction, input, response with alpaca prompts (axolotl 0.21.0)."""

from __future__ import annotations

from newtune.config.data import DatasetConfig
from newtune.data.formats.instruct import prompt_response, style_name, text
from newtune.data.styles import alpaca_prompter
from newtune.data.types import Format, FormatContext, Row, Segment


def gpteacher(row: Row, ds: DatasetConfig, ctx: FormatContext) -> list[Segment]:
    prompt = alpaca_prompter(style_name(ds, "instruct")).prompt(row["instruction"], text(row.get("input")))
    return prompt_response(prompt, text(row["response"]), ctx)


TYPES = {"gpteacher": Format(gpteacher, "segments", "instruction/input/response; the style after ':' (default instruct)")}
