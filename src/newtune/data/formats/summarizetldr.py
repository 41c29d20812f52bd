"""`type: summarizetldr`: article → summary with a fixed TL;DR chat prompt (axolotl 0.21.0).

The style after ':' is accepted and ignored, as in axolotl's SummarizeTLDRPrompter.
"""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import StyledOptions, prompt_response
from newtune.data.styles import Prompter, PromptStyle
from newtune.data.types import Format, FormatContext, Row, Segment

TLDR = Prompter(PromptStyle(
    "USER: Summarize the following article as a TL;DR.\n{instruction}\n{input}\nASSISTANT:",
    "USER: Summarize the following article as a TL;DR.\n{instruction}\nASSISTANT:",
))


def summarizetldr(row: Row, opts: StyledOptions, ctx: FormatContext) -> list[Segment]:
    return prompt_response(TLDR.prompt_parts(rf.need(row, "article")), rf.nullable(row, "summary"), ctx)


TYPES = {"summarizetldr": Format(summarizetldr, "segments", StyledOptions, "article/summary, TL;DR chat prompt", prompt_field="article")}
