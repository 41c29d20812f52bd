"""`type: oasst`: OpenAssistant INSTRUCTION/RESPONSE rows with alpaca prompts (axolotl 0.21.0)."""

from __future__ import annotations

from newtune.config.data import DatasetConfig
from newtune.data.formats.instruct import prompt_response, style_name, text
from newtune.data.styles import alpaca_prompter
from newtune.data.types import Format, FormatContext, Row, Segment


def oasst(row: Row, ds: DatasetConfig, ctx: FormatContext) -> list[Segment]:
    prompt = alpaca_prompter(style_name(ds, "instruct")).prompt(row["INSTRUCTION"])
    return prompt_response(prompt, text(row["RESPONSE"]), ctx)


TYPES = {"oasst": Format(oasst, "segments", "INSTRUCTION/RESPONSE; the style after ':' (default instruct)")}
