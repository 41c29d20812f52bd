"""`type: alpaca_chat` and its loaders: alpaca fields in the chat style ("USER: ... ASSISTANT:").

axolotl 0.21.0 prompt_strategies/alpaca_chat.py. `alpaca_chat` takes its style from the dataset's
`conversation:` key (default chat); the loaders always use chat.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from newtune.data import rowfields as rf
from newtune.data.formats.alpaca import alpaca_segments
from newtune.data.formats.instruct import prompt_response
from newtune.data.styles import STYLES, Prompter, alpaca_prompter, style
from newtune.data.types import Format, FormatContext, FormatOptions, Row, Segment

# AlpacaConcisePrompter / AlpacaChatPrompter system prompts (the no-input one says "appropriately and concisely").
CONCISE_SYSTEM = (
    "Below is an instruction from a USER that describes a task, paired with an input that provides further "
    "context. The ASSISTANT writes a response that concisely and appropriately completes the request.\n\n"
)
CONCISE_SYSTEM_NO_INPUT = (
    "Below is an instruction from a USER that describes a task. The ASSISTANT writes a response that "
    "appropriately and concisely completes the request.\n\n"
)


def _concise() -> Prompter:
    return Prompter(style("chat"), CONCISE_SYSTEM, CONCISE_SYSTEM_NO_INPUT)


class Options(FormatOptions):
    conversation: str | None = Field(None, description="The prompt style (instruct, chat, chatml, phi); default chat.")

    @field_validator("conversation")
    @classmethod
    def _known_style(cls, v: str | None) -> str | None:
        if v is not None and v not in STYLES:
            raise ValueError(f"unknown prompt style '{v}'; known: {', '.join(STYLES)}")
        return v


def alpaca_chat(row: Row, opts: Options, ctx: FormatContext) -> list[Segment]:
    return alpaca_segments(row, alpaca_prompter(opts.conversation or "chat"), ctx)


def load_concise(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    return alpaca_segments(row, _concise(), ctx)


def load_qa(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    return prompt_response(_concise().prompt_parts(rf.need(row, "question")), rf.nullable(row, "answer"), ctx)


def load_camel_ai(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    return prompt_response(_concise().prompt_parts(rf.need(row, "message_1")), rf.nullable(row, "message_2"), ctx)


def load_no_prompt(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    return alpaca_segments(row, Prompter(style("chat")), ctx)


TYPES = {
    "alpaca_chat": Format(alpaca_chat, "segments", Options, "alpaca fields, chat style (or the `conversation:` style)", prompt_field="instruction"),
    "alpaca_chat.load_concise": Format(load_concise, "segments", FormatOptions, "alpaca fields, chat style, concise system prompt",
                                       prompt_field="instruction"),
    "alpaca_chat.load_qa": Format(load_qa, "segments", FormatOptions, "question/answer, chat style, concise system prompt", prompt_field="question"),
    "alpaca_chat.load_camel_ai": Format(load_camel_ai, "segments", FormatOptions, "message_1/message_2, chat style, concise system prompt",
                                        prompt_field="message_1"),
    "alpaca_chat.load_no_prompt": Format(load_no_prompt, "segments", FormatOptions, "alpaca fields, chat style, no system prompt",
                                         prompt_field="instruction"),
}
