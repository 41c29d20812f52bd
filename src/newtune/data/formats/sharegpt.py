"""`type: sharegpt` and its loaders: `{"conversations": [{"from": "human", "value": "..."}]}` rows.

axolotl 0.21.0 refuses every `sharegpt*` type ("use chat_template instead"); newtune keeps them as the
documented older behaviour, built on the chat_template path (one masking path):

- `from` values: human (or field_human) → user, gpt/assistant (or field_model) → assistant, system;
  names listed under `roles: {input: [...], output: [...]}` keep their own name, and `output` ones are
  trained like assistant turns; tool turns are inputs.
- `conversation: chatml` renders with the ChatML template; unset, the run's chat template is used.
- `sharegpt.load_role`: `role` instead of `from`; `sharegpt.load_guanaco`: OpenAssistant rows
  ({"role": "prompter"|"assistant", "text"}); `sharegpt_jokes`: {title, text, explanation} rows become
  "Tell me a joke." / joke / "Why is that joke funny?" / explanation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from newtune.data import rowfields as rf
from newtune.data.formats.chat_template import ChatOptions, finish, load_json
from newtune.data.types import Conversation, FormatContext, Message, Row
from newtune.errors import DataError

CONVERSATIONS = ("chatml",)  # `conversation:` values newtune renders (FastChat's others are not shipped)
GUANACO_ROLES = {"prompter": "human", "assistant": "gpt"}


class Options(ChatOptions):
    """The sharegpt loaders: `roles: {input: [...], output: [...]}` lists extra role names."""

    conversation: str | None = Field(None, description="Conversation style rendered instead of the chat template (chatml).")
    field_human: str | None = Field(None, description="The `from` value of user turns.")
    field_model: str | None = Field(None, description="The `from` value of assistant turns.")

    def own_template(self) -> str | None:
        return conversation_template(self.conversation) if self.conversation else None

    def role_aliases(self) -> dict[str, str]:
        return {}  # role_map already wrote the template's role names

    def extra_trained_roles(self) -> tuple[str, ...]:
        return output_roles(self)


class FromValueOptions(Options):
    """`type: sharegpt`: the turn's role and text keys can be renamed."""

    message_field_role: str | None = Field(None, description="Turn key holding the role (default from).")
    message_field_content: str | None = Field(None, description="Turn key holding the text (default value).")


def role_map(ds: Options) -> dict[str, str]:
    """Every accepted `from` value → the role written into the template."""
    out = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
           "tool": "tool"}
    if ds.field_human:
        out[ds.field_human] = "user"
    if ds.field_model:
        out[ds.field_model] = "assistant"
    for name in (*(ds.roles or {}).get("input", ()), *(ds.roles or {}).get("output", ())):
        out.setdefault(name, name)
    return out


def output_roles(ds: Options) -> tuple[str, ...]:
    """Extra roles trained like assistant turns (`roles: {output: [...]}`)."""
    return tuple((ds.roles or {}).get("output", ()))


def conversation_template(name: str) -> str:
    if name not in CONVERSATIONS:
        raise DataError(
            "conversation", f"conversation style {name!r} is not supported (supported: {', '.join(CONVERSATIONS)})",
            "use conversation: chatml, or drop it and set chat_template (tokenizer_default, chatml, jinja)",
        )
    return name


def _turns(row: Row, role_key: str, value_key: str) -> list[Mapping[str, Any]]:
    if "conversations" not in row or row["conversations"] is None:
        has = ", ".join(k for k, v in row.items() if v is not None) or "nothing"
        raise DataError("", f"missing field 'conversations' (row has: {has})")
    turns = load_json(row["conversations"], "field 'conversations'")
    if not isinstance(turns, list) or not all(isinstance(t, Mapping) for t in turns):
        raise DataError("", "field 'conversations' must be a list of turns (objects)")
    for i, t in enumerate(turns):
        for key in (role_key, value_key):
            if t.get(key) is None:
                raise DataError("", f"conversations[{i}] has no '{key}' (turn has: {', '.join(t)})")
        if not isinstance(t[value_key], str):
            raise rf.wrong_type(value_key, t[value_key], "text", f"conversations[{i}]")
    return turns


def _conversation(pairs: list[tuple[Any, Any]], row: Row, ds: Options, ctx: FormatContext) -> Conversation:
    roles = role_map(ds)
    messages = []
    for raw, value in pairs:
        if raw not in roles:
            raise DataError("", f"unknown role {raw!r}; the role mapping is {roles}",
                            "list it under roles: {input: [...]} or roles: {output: [...]} for this dataset")
        messages.append(Message(roles[raw], str(value)))
    messages = finish(messages, row, ds, ctx)
    if not messages:
        raise DataError("", "field 'conversations' holds no turns")
    return Conversation(tuple(messages))


def to_conversation(row: Row, ds: FromValueOptions, ctx: FormatContext) -> Conversation:
    role_key, value_key = ds.message_field_role or "from", ds.message_field_content or "value"
    return _conversation([(t[role_key], t[value_key]) for t in _turns(row, role_key, value_key)], row, ds, ctx)


def load_role(row: Row, ds: Options, ctx: FormatContext) -> Conversation:
    return _conversation([(t["role"], t["value"]) for t in _turns(row, "role", "value")], row, ds, ctx)


def load_guanaco(row: Row, ds: Options, ctx: FormatContext) -> Conversation:
    turns = _turns(row, "role", "text")
    pairs = []
    for t in turns:
        if t["role"] not in GUANACO_ROLES:
            raise DataError("", f"unknown role {t['role']!r}; sharegpt.load_guanaco expects prompter or assistant")
        pairs.append((GUANACO_ROLES[t["role"]], t["text"]))
    return _conversation(pairs, row, ds, ctx)


def jokes(row: Row, ds: Options, ctx: FormatContext) -> Conversation:
    """One joke row (title, text, explanation), at the top of the row or as conversations[0]."""
    src = row
    if "text" not in row and isinstance(row.get("conversations"), list) and row["conversations"]:
        src = row["conversations"][0]
    for key in ("text", "explanation"):
        if src.get(key) is None:
            raise DataError("", f"missing field '{key}' (row has: {', '.join(k for k in src if src[k] is not None)})")
    title = f"{src['title']} " if src.get("title") else ""
    pairs = [("human", "Tell me a joke."), ("gpt", title + src["text"]),
             ("human", "Why is that joke funny?"), ("gpt", src["explanation"])]
    return _conversation(pairs, row, ds, ctx)
