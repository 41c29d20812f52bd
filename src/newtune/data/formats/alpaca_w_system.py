"""`type: alpaca_w_system` (+ loaders): alpaca fields with the system prompt taken from each row.

axolotl 0.21.0 prompt_strategies/alpaca_w_system.py: `alpaca_w_system` = `.load_chat` (chat style),
`.load_instruct`; `.load_open_orca` reads question/response/system_prompt with "### Human:" turns.
"""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.formats.instruct import prompt_response
from newtune.data.styles import PromptStyle, style
from newtune.data.types import Format, FormatContext, FormatOptions, Row, Segment

OPEN_ORCA = PromptStyle(
    "### Human:\n{instruction}\n### Additional Context:\n{input}\n### Assistant:\n",
    "### Human:\n{instruction}\n### Assistant:\n",
    "### System:\n{system}\n",
)


def system_segments(row: Row, fmt: PromptStyle, ctx: FormatContext) -> list[Segment]:
    """instruction/input/output/system: the row's own system prompt, formatted when non-empty."""
    prompt = fmt.render(rf.need(row, "instruction"), rf.opt(row, "input"), rf.nullable(row, "system"))
    return prompt_response(prompt, rf.nullable(row, "output"), ctx)


def load_chat(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    return system_segments(row, style("chat"), ctx)


def load_instruct(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    return system_segments(row, style("instruct"), ctx)


def _orca(row: Row, fmt: PromptStyle, ctx: FormatContext) -> list[Segment]:
    prompt = fmt.render(rf.need(row, "question"), "", rf.nullable(row, "system_prompt"))
    return prompt_response(prompt, rf.nullable(row, "response"), ctx)


def load_open_orca(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    return _orca(row, OPEN_ORCA, ctx)


def load_open_orca_chatml(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    return _orca(row, style("chatml"), ctx)


TYPES = {
    "alpaca_w_system": Format(load_chat, "segments", FormatOptions, "instruction/input/output/system, chat style", prompt_field="instruction"),
    "alpaca_w_system.load_chat": Format(load_chat, "segments", FormatOptions, "instruction/input/output/system, chat style",
                                        prompt_field="instruction"),
    "alpaca_w_system.load_instruct": Format(load_instruct, "segments", FormatOptions, "instruction/input/output/system, instruct style",
                                            prompt_field="instruction"),
    "alpaca_w_system.load_open_orca": Format(load_open_orca, "segments", FormatOptions, "OpenOrca: question/response/system_prompt",
                                             prompt_field="question"),
    "alpaca_w_system.load_open_orca_chatml": Format(load_open_orca_chatml, "segments", FormatOptions, "OpenOrca fields, chatml style",
                                                    prompt_field="question"),
}
