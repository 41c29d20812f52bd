"""`type: oasst`: OpenAssistant INSTRUCTION/RESPONSE rows with alpaca prompts (axolotl 0.21.0)."""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import StyledOptions, prompt_response
from newtune.data.styles import alpaca_prompter
from newtune.data.types import Format, FormatContext, Row, Segment


def oasst(row: Row, opts: StyledOptions, ctx: FormatContext) -> list[Segment]:
    prompt = alpaca_prompter(opts.style or "instruct").prompt_parts(rf.need(row, "INSTRUCTION"))
    return prompt_response(prompt, rf.nullable(row, "RESPONSE"), ctx)


TYPES = {"oasst": Format(oasst, "segments", StyledOptions, "INSTRUCTION/RESPONSE; the style after ':' (default instruct)",
                         prompt_field="INSTRUCTION")}
