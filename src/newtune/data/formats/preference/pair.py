"""A preference row after its format: three strings, and the format that makes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from newtune.data.types import FormatOptions, Row


@dataclass(frozen=True, slots=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    answers: tuple[str, str] | None = None  # chosen and rejected before end markers were added (empty checks)


@dataclass(frozen=True, slots=True)
class PairFormat:
    """A preference `type:`: `fn(row, opts, ctx) -> Pair`, its Options (the keys it reads under datasets[i]),
    and `prompt(user_text)`: the prompt it builds for a user's text alone (inference); None: used raw."""

    fn: Callable[..., Pair]
    doc: str = ""
    Options: type[FormatOptions] = FormatOptions
    prompt: Callable[[str], str] | None = None


def text(row: Row, key: str) -> str:
    """row[key] as a string: a missing key is a KeyError (named with the row by the pipeline)."""
    value = row[key]
    if value is None:
        raise KeyError(key)
    if not isinstance(value, str):
        raise TypeError(f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def last_content(row: Row, key: str, index: int) -> str:
    """row[key][index]['content']: the message lists of argilla- and ultrafeedback-style rows."""
    messages = row[key]
    if not isinstance(messages, list) or len(messages) <= index or not isinstance(messages[index], dict):
        raise TypeError(f"field {key!r} must be a list of at least {index + 1} messages")
    return text(messages[index], "content")

