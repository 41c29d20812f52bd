"""`type: gpteacher`: instruction, input, response with alpaca prompts (axolotl 0.21.0)."""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import StyledOptions, prompt_response
from newtune.data.styles import alpaca_prompter
from newtune.data.types import Format, FormatContext, Row, Segment


def gpteacher(row: Row, opts: StyledOptions, ctx: FormatContext) -> list[Segment]:
    prompt = alpaca_prompter(opts.style or "instruct").prompt(rf.need(row, "instruction"), rf.opt(row, "input"))
    return prompt_response(prompt, rf.nullable(row, "response"), ctx)


TYPES = {"gpteacher": Format(gpteacher, "segments", StyledOptions, "instruction/input/response; the style after ':' (default instruct)",
                             prompt_field="instruction")}
