"""`type: jeopardy`: question, category, answer → "what is <answer>" (axolotl 0.21.0, alpaca prompts)."""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import StyledOptions, prompt_response
from newtune.data.styles import alpaca_prompter
from newtune.data.types import Format, FormatContext, Row, Segment


def jeopardy(row: Row, opts: StyledOptions, ctx: FormatContext) -> list[Segment]:
    prompt = alpaca_prompter(opts.style or "instruct").prompt(rf.need(row, "question"), rf.nullable(row, "category"))
    return prompt_response(prompt, "what is " + rf.nullable(row, "answer"), ctx)


TYPES = {"jeopardy": Format(jeopardy, "segments", StyledOptions, "question/category/answer; the style after ':' (default instruct)",
                            prompt_field="question")}
