"""Core data types shared by formats, templates, encoding and the pipeline."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypedDict

from newtune.config.base import Section

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
    # Optionally `text` cut where a row's own fields begin and end ("".join(parts) == text, no part empty): the
    # encoder may tokenize the parts alone, so a style's fixed text is tokenized once per batch, where the
    # tokenizer's pre-tokenizer splits at every cut anyway (same ids; see encode.cuts_are_splits).
    parts: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def of_parts(cls, parts: tuple[str, ...], train: bool) -> Segment:
        return cls("".join(parts), train, parts)


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
    vocab_size: int | None = field(default=None, repr=False)  # ids a pre-tokenized row may hold; not in the fingerprint


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
# What a batch is once rendered: a conversation becomes "joined" (its template's text as Segments, tokenized
# once and labelled by character offset); the other kinds stay as they are.
RenderedKind = Literal["segments", "pieces", "joined", "tokens"]


class FormatOptions(Section):
    """The keys one format reads under `datasets[i]`, beyond the common ones (config/data.py DatasetConfig).

    `extra="forbid"`: a key the format does not read is an error at `check`, never silently ignored.
    data/options.py validates them once per dataset entry; formats read `opts.<key>`.
    """

    # Section: extra="forbid", frozen, a null value means the default.
    # Fields filled from the `type:` value itself (`alpaca:chat` → style), never from a key of the entry.
    FROM_TYPE: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_type(cls, type_value: Any) -> dict[str, Any]:
        """Values the entry's `type:` gives (the style after ':', a user-defined mapping's keys)."""
        return {}


@dataclass(frozen=True, slots=True)
class Format:
    """A dataset `type:`: a function from one row to segments, a conversation, or ready token ids.

    `fn(row, opts, ctx)`: `opts` is the dataset entry's validated `Options`, `ctx` a FormatContext.
    `prompt_field` names the row field that holds the user's prompt at inference (instruct formats),
    or computes it from the options; None: prompts are used raw (or through the chat template).
    """

    fn: Callable[..., FormatOutput]
    kind: Kind
    Options: type[FormatOptions] = FormatOptions
    doc: str = ""
    prompt_field: str | Callable[[Any], str] | None = None

    def prompt_field_for(self, opts: FormatOptions) -> str | None:
        return self.prompt_field(opts) if callable(self.prompt_field) else self.prompt_field


class Tokenizer(Protocol):
    """The tokenizer calls newtune makes: a `data.tokenizer.LightTokenizer` (tokenizers alone, for the data
    path) or a transformers fast tokenizer (training, inference), which both provide them."""

    bos_token: str | None
    eos_token: str | None
    pad_token: str | None
    unk_token: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    pad_token_id: int | None
    unk_token_id: int | None
    chat_template: str | dict[str, str] | None
    name_or_path: str
    backend_tokenizer: Any  # tokenizers.Tokenizer
    padding_side: str

    @property
    def all_special_tokens(self) -> list[str]: ...

    @property
    def special_tokens_map(self) -> Mapping[str, Any]: ...

    def __call__(self, text: str | list[str], *, add_special_tokens: bool = True, return_offsets_mapping: bool = False,
                 return_attention_mask: bool = True) -> Mapping[str, Any]: ...

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str: ...

    def convert_ids_to_tokens(self, ids: int | list[int]) -> str | list[str]: ...  # one id, or a list

    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | None | list[int | None]: ...  # one token, or a list

    def get_vocab(self) -> dict[str, int]: ...

    def __len__(self) -> int: ...
