"""`type: jeopardy`: question, category, answer → "what is <answer>" (axolotl 0.21.0, alpaca prompts)."""

from __future__ import annotations

from newtune.config.data import DatasetConfig
from newtune.data.formats.instruct import prompt_response, style_name, text
from newtune.data.styles import alpaca_prompter
from newtune.data.types import Format, FormatContext, Row, Segment


def jeopardy(row: Row, ds: DatasetConfig, ctx: FormatContext) -> list[Segment]:
    prompt = alpaca_prompter(style_name(ds, "instruct")).prompt(row["question"], text(row["category"]))
    return prompt_response(prompt, "what is " + text(row["answer"]), ctx)


TYPES = {"jeopardy": Format(jeopardy, "segments", "question/category/answer; the style after ':' (default instruct)")}
