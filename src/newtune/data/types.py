"""Core data types shared by formats, templates, encoding and the pipeline."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

Row = Mapping[str, Any]
IGNORE = -100  # label of a token that is not trained


@dataclass(frozen=True, slots=True)
class Message:
    role: str  # system | user | assistant | tool, after the `roles:` alias map
    content: str
    train: bool | None = None  # None: train_on.py decides from the config; a bool: the row decided
    train_detail: tuple[tuple[int, int, bool], ...] | None = None  # (begin, end, train) character spans
    extra: Mapping[str, Any] = field(default_factory=dict)  # tool_calls, name, ... passed to the template


@dataclass(frozen=True, slots=True)
class Segment:
    text: str  # rendered text; special tokens are written out ("<s>", "<|im_end|>")
    train: bool


@dataclass(frozen=True, slots=True)
class InstructRow:
    """What instruct-style types pull out of a row; a PromptStyle renders it."""

    instruction: str
    input: str = ""
    output: str = ""
    system: str | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    """What conversation types pull out of a row; a ChatTemplate renders it."""

    messages: tuple[Message, ...]
    tools: Any = None


class Encoded(TypedDict):
    input_ids: list[int]
    labels: list[int]  # the id where trained, -100 where not; always the same length


@dataclass(frozen=True, slots=True)
class TokenizerInfo:
    """What formats may know about the tokenizer: its special-token texts, never the tokenizer itself."""

    bos_token: str | None
    eos_token: str | None
    add_bos: bool  # the tokenizer adds BOS when called with add_special_tokens=True
    add_eos: bool


@dataclass(frozen=True, slots=True)
class FormatContext:
    """Run-wide settings a format needs besides the row and its dataset entry."""

    tokenizer: TokenizerInfo
    train_on_inputs: bool
    sequence_len: int
    default_system_message: str | None = None


FormatOutput = list[Segment] | list[list[Segment]] | Conversation | Encoded
# "pieces": a list of pieces, each a list of Segments tokenized together (labels by character offset)
Kind = Literal["segments", "pieces", "conversation", "tokens"]


@dataclass(frozen=True, slots=True)
class Format:
    """A dataset `type:`: a function from one row to segments, a conversation, or ready token ids.

    `fn(row, ds, ctx)`: `ds` is the row's `datasets[i]` entry (DatasetConfig), `ctx` a FormatContext.
    """

    fn: Callable[..., FormatOutput]
    kind: Kind
    doc: str = ""
