"""`type: chat_template`: rows holding a list of messages, rendered through a Jinja chat template.

Keys (axolotl's): field_messages (default "messages"), message_property_mappings (or the older
message_field_role / message_field_content), roles (alias map), message_field_training,
message_field_training_detail, field_tools (default "tools"), drop_system_message, field_thinking /
template_thinking_key (the reasoning field, default reasoning_content, and the key the template reads it
from) and split_thinking. A row-level "system" field (field_system) becomes the system message when the
conversation has none. Tool calls' `function.arguments` and tools' `function.parameters` given as JSON
strings are decoded; `messages` and tools may be stored as JSON strings.

Where newtune differs from axolotl 0.21.0 (which is otherwise matched token for token):
- a role outside the alias map is an error (axolotl passes it through unmapped);
- every other non-null message field (tool_calls, name, ...) reaches the template; axolotl keeps only
  the fields its template analyzer finds, which misses loops not named `message`;
- default_system_message adds a system turn to conversations without one (axolotl only rewrites
  "You are a helpful assistant." inside a chatml template);
- `chat_template.default` is accepted as `chat_template` (axolotl 0.21.0 cannot load it);
- field_thinking and field_tools are honoured: axolotl 0.21.0 ignores both when set in a config (its
  validator always fills message_property_mappings, so the reasoning field is never mapped, and its
  loader never passes field_tools on).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from newtune.config.data import TrainOn, check_chat_template_name
from newtune.data import rowfields as rf
from newtune.data.train_on import role_aliases
from newtune.data.types import Conversation, FormatContext, FormatOptions, Message, Row
from newtune.errors import DataError


class ChatOptions(FormatOptions):
    """Keys every conversation type reads: its template, what trains, and the row's system turn."""

    chat_template: str | None = Field(None, description="Per-dataset chat template (overrides the top level).")
    chat_template_jinja: str | None = Field(None, description="Inline Jinja or a path to a .jinja file.")
    roles: dict[str, list[str]] | None = Field(None, description="Role aliases: {user: [human, user], ...}.")
    roles_to_train: list[str] | None = Field(None, description="Roles whose messages are trained.")
    train_on_eos: TrainOn | None = Field(None, description="Which EOS tokens are trained: all, turn, last, none.")
    train_on_eot: TrainOn | None = Field(None, description="Which end-of-turn tokens are trained.")
    drop_system_message: bool | None = Field(None, description="Drop system messages from conversations.")
    field_system: str | None = Field(None, description="Row field with a system prompt (default system).")

    _check_template = field_validator("chat_template")(classmethod(lambda cls, v: check_chat_template_name(v)))

    def own_template(self) -> str | None:
        """A shipped template this format's keys choose by themselves (sharegpt's `conversation:`), if any."""
        return None

    def role_aliases(self) -> dict[str, str]:
        """Role names in the data → template roles (used by roles_to_train)."""
        return role_aliases(self.roles)

    def extra_trained_roles(self) -> tuple[str, ...]:
        """Roles trained besides roles_to_train."""
        return ()


class Options(ChatOptions):
    """`type: chat_template`: where the messages and their properties are in a row."""

    field_messages: str | None = Field(None, description="Row field holding the list of messages.")
    field_tools: str | None = Field(None, description="Row field holding the tool definitions.")
    message_property_mappings: dict[str, str] | None = Field(
        None, description="Map of message property (role, content, ...) to the field name in the data."
    )
    message_field_role: str | None = Field(None, description="Older name for message_property_mappings.role.")
    message_field_content: str | None = Field(None, description="Older name for message_property_mappings.content.")
    message_field_training: str | None = Field(None, description="Per-message boolean field: train this message.")
    message_field_training_detail: str | None = Field(
        None, description="Per-message field of character spans to train (begin_offset, end_offset, train)."
    )
    field_thinking: str | None = Field(
        None, description="Message field holding the reasoning (default reasoning_content); the template reads it "
        "as template_thinking_key."
    )
    template_thinking_key: str | None = Field(
        None, description="The message key the template reads reasoning from (default reasoning_content)."
    )
    split_thinking: bool | None = Field(
        None, description="Split <think>...</think> (or <reasoning>, <|begin_of_thought|>) off assistant content "
        "into the reasoning key."
    )


def property_mappings(ds: Options) -> dict[str, str]:
    """message_property_mappings with the legacy message_field_role/content folded in (role, content default)."""
    out = dict(ds.message_property_mappings or {})
    for prop, legacy in (("role", ds.message_field_role), ("content", ds.message_field_content)):
        if legacy is not None:
            if prop in out and out[prop] != legacy:
                raise DataError(
                    f"message_field_{prop}",
                    f"{legacy!r} conflicts with message_property_mappings.{prop} = {out[prop]!r}",
                    "keep only message_property_mappings",
                )
            out[prop] = legacy
        out.setdefault(prop, prop)
    return out


def load_json(value: Any, what: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise DataError("", f"{what} is a string but not valid JSON ({e})") from None
    return value


def row_messages(row: Row, field: str) -> list[Any]:
    """The row's list of messages (a JSON string is decoded), or a DataError naming what the row has."""
    if field not in row or row[field] is None:
        has = ", ".join(k for k, v in row.items() if v is not None) or "nothing"
        raise DataError("", f"missing field '{field}' (row has: {has})",
                        "set field_messages to the field that holds the list of messages")
    messages = load_json(row[field], f"field '{field}'")
    if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
        raise DataError("", f"field '{field}' must be a list of messages (objects), got {type(messages).__name__}")
    return messages


def map_role(raw: Any, aliases: Mapping[str, str]) -> str:
    if raw in aliases:
        return aliases[raw]
    raise DataError("", f"unknown role {raw!r}; the role mapping is {dict(aliases)}",
                    "add it to `roles:` for this dataset, e.g. roles: {assistant: [" + f"{raw}" + "]}")


def content_parts(content: list[Any]) -> tuple[str, tuple[tuple[int, int, bool], ...] | None]:
    """A list of content parts → text, plus character spans when parts carry `train` or `weight` (axolotl's rule)."""
    texts, detail, explicit, offset = [], [], False, 0
    for part in content:
        if not isinstance(part, Mapping):
            continue
        text = part.get("text") or part.get("content") or part.get("value") or ""
        texts.append(text)
        train, weight = part.get("train"), part.get("weight")
        if train is not None or weight is not None:
            explicit = True
        flag = bool(train) if train is not None else (weight not in (0, 0.0) if weight is not None else True)
        if text:
            detail.append((offset, offset + len(text) - 1, flag))
            offset += len(text)
    return "".join(texts), tuple(detail) if explicit else None


def _detail(value: Any) -> tuple[tuple[int, int, bool], ...] | None:
    if value is None:
        return None
    return tuple((int(d["begin_offset"]), int(d["end_offset"]), bool(d["train"])) for d in value)


def _decode_function_field(items: list, key: str, what: str) -> list:
    """`function.<key>` given as a JSON string is decoded, as axolotl does, so templates see objects."""
    out = []
    for item in items:
        fn = item.get("function") if isinstance(item, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get(key), str):
            item = {**item, "function": {**fn, key: load_json(fn[key], what)}}
        out.append(item)
    return out


THINKING_PAIRS = (("<think>", "</think>"), ("<reasoning>", "</reasoning>"), ("<|begin_of_thought|>", "<|end_of_thought|>"))
SOLUTION_PAIR = ("<|begin_of_solution|>", "<|end_of_solution|>")


def split_thinking(content: str) -> tuple[str, str] | None:
    """axolotl's split_thinking: (reasoning, answer) from content holding a thinking pair, else None."""
    for start, end in THINKING_PAIRS:
        if start in content and end in content:
            a, b = content.find(start), content.find(end)
            rest = content[b + len(end):].lstrip()
            s, e = SOLUTION_PAIR
            if s in rest and e in rest:
                rest = rest[rest.find(s) + len(s): rest.find(e)].strip()
            return content[a + len(start): b].strip(), rest
    return None


@dataclass(frozen=True, slots=True)
class MessageKeys:
    """Where a dataset's messages keep each property; computed once per dataset entry."""

    role: str
    content: str
    other: tuple[tuple[str, str], ...]  # (template property, message field) beyond role and content
    training: str | None
    detail: str | None
    skip: frozenset[str]  # fields not passed through to the template as they are
    aliases: dict[str, str]
    thinking: str  # the key the template reads reasoning from
    split: bool  # split_thinking


_KEYS: dict[int, tuple[Options, MessageKeys]] = {}


def message_keys(ds: Options) -> MessageKeys:
    hit = _KEYS.get(id(ds))
    if hit is not None and hit[0] is ds:
        return hit[1]
    m = property_mappings(ds)
    thinking = getattr(ds, "template_thinking_key", None) or "reasoning_content"
    field = getattr(ds, "field_thinking", None) or "reasoning_content"
    m.setdefault(thinking, field)  # unlike axolotl 0.21.0, whose validator fills the mappings so this never applies
    training, detail = ds.message_field_training, ds.message_field_training_detail
    other = tuple((p, f) for p, f in m.items() if p not in ("role", "content"))
    keys = MessageKeys(m["role"], m["content"], other, training, detail,
                       frozenset({*m.values(), training, detail} - {None}), role_aliases(ds.roles), thinking,
                       bool(getattr(ds, "split_thinking", None)))
    if len(_KEYS) > 64:
        _KEYS.clear()
    _KEYS[id(ds)] = (ds, keys)  # holds ds, so its id is not reused while cached
    return keys


def mapping_hint(raw: Mapping[str, Any], keys: MessageKeys) -> str:
    """What to set when a message lacks the role or content field: sharegpt turns get their mapping."""
    if "from" in raw and "value" in raw:
        return ("these messages are sharegpt turns ({from, value}): set message_property_mappings: "
                "{role: from, content: value} on this dataset (or use type: sharegpt)")
    return (f"set message_property_mappings: {{role: <field>, content: <field>}} to the message fields that hold "
            f"them (now role: {keys.role}, content: {keys.content})")


def to_message(raw: Mapping[str, Any], keys: MessageKeys, where: str = "") -> Message:
    role = raw.get(keys.role)
    if role is None:
        raise rf.missing(raw, keys.role, where, mapping_hint(raw, keys))
    role = keys.aliases[role] if role in keys.aliases else map_role(role, keys.aliases)
    content = raw.get(keys.content)
    detail = _detail(raw.get(keys.detail)) if keys.detail else None
    if isinstance(content, list):
        content, part_detail = content_parts(content)
        detail = part_detail if part_detail is not None else detail
    elif content is None and raw.get("tool_calls") is None:  # a tool-calling turn may have no text
        raise rf.missing(raw, keys.content, where, mapping_hint(raw, keys))
    elif content is not None and not isinstance(content, str):
        raise rf.wrong_type(keys.content, content, "text (or a list of content parts)", where)
    train = rf.flag(raw, keys.training, where, weights=True) if keys.training else None
    extra = {k: v for k, v in raw.items() if v is not None and k not in keys.skip}
    for prop, field in keys.other:
        if raw.get(field) is not None:
            extra[prop] = raw[field]
    if keys.split and role == "assistant" and isinstance(content, str):
        parts = split_thinking(content)
        if parts is not None:
            extra[keys.thinking], content = parts
    if extra.get("tool_calls"):
        extra["tool_calls"] = _decode_function_field(extra["tool_calls"], "arguments", "tool call arguments")
    return Message(role, content, None if train is None else bool(train), detail, extra)


def row_tools(row: Row, ds: Options) -> Any:
    tools = load_json(row.get(ds.field_tools or "tools"), "tools")
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise DataError("", f"tools must be a list of tool definitions, got {type(tools).__name__}")
    return _decode_function_field(tools, "parameters", "tool parameters")


def finish(messages: list[Message], row: Row, ds: ChatOptions, ctx: FormatContext) -> list[Message]:
    """Row-level system field, drop_system_message, then default_system_message."""
    field_system = ds.field_system or "system"
    if messages and messages[0].role != "system" and row.get(field_system) is not None:
        messages.insert(0, Message("system", rf.need(row, field_system)))
    if ds.drop_system_message and messages and messages[0].role == "system":
        messages = messages[1:]
    if ctx.default_system_message is not None and not (messages and messages[0].role == "system"):
        messages.insert(0, Message("system", ctx.default_system_message))
    return messages


def to_conversation(row: Row, ds: Options, ctx: FormatContext) -> Conversation:
    keys = message_keys(ds)
    field = ds.field_messages or "messages"
    raw = row_messages(row, field)
    messages = finish([to_message(m, keys, f"{field}[{i}]") for i, m in enumerate(raw)], row, ds, ctx)
    if not messages:
        raise DataError("", f"field '{ds.field_messages or 'messages'}' holds no messages")
    return Conversation(tuple(messages), row_tools(row, ds))
