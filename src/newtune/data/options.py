"""Each dataset entry's `type:` and format options, checked by the data layer that owns them.

`check_datasets` is what the config loader calls (newtune/load.py passes it): every problem of every
entry, with its dotted path, joins the loader's one list. `options_of` gives the validated Options of
one DatasetConfig at run time (once per entry), and refuses bad keys the same way if no check ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from newtune.config.data import DatasetConfig
from newtune.config.load import did_you_mean, render_error
from newtune.data.formats import FORMATS, PRETOKENIZED
from newtune.data.jinja import template_problems
from newtune.data.styles import STYLES
from newtune.data.types import Format, FormatOptions
from newtune.errors import ConfigError

COMMON_KEYS = tuple(DatasetConfig.model_fields)


def format_named(type_value: Any) -> Format:
    """The Format of a `type:` value (a name, `name:style`, a user-defined mapping, or None)."""
    if type_value is None:
        return PRETOKENIZED
    if not isinstance(type_value, str):
        return FORMATS["user_defined"]
    return FORMATS[type_value.partition(":")[0]]


def format_of(ds: DatasetConfig) -> Format:
    return format_named(ds.type)


def settable_keys(fmt: Format) -> list[str]:
    """The keys an entry of this format may set: the common ones and its Options' own."""
    own = [k for k in fmt.Options.model_fields if k not in fmt.Options.FROM_TYPE]
    return [*COMMON_KEYS, *own]


def readers_of(key: str) -> list[str]:
    """The type names whose Options read `key`."""
    return [name for name, fmt in FORMATS.items() if key in fmt.Options.model_fields and key not in fmt.Options.FROM_TYPE]


def type_problems(type_value: Any, where: str, at_run: bool = False) -> list[str]:
    """An unknown type name, an unknown style, or a style on a type that takes none (at run time, on an
    entry no check saw, with the key that holds such a type's style)."""
    if not isinstance(type_value, str):
        return []
    name, _, style = type_value.partition(":")
    if name not in FORMATS:
        return [f"{where}.type: unknown dataset type '{type_value}'{did_you_mean(name, FORMATS)}"]
    if style and style not in STYLES:
        return [f"{where}.type: unknown prompt style '{style}'{did_you_mean(style, STYLES)}"]
    if style and "style" not in FORMATS[name].Options.FROM_TYPE:
        if at_run and "conversation" in FORMATS[name].Options.model_fields:  # the key that holds this type's style
            return [f"{where}.type: type '{name}' takes no ':{style}' prompt style; set `conversation: {style}` instead"]
        styled = [n for n, f in FORMATS.items() if "style" in f.Options.FROM_TYPE]
        return [f"{where}.type: type '{name}' takes no ':{style}' prompt style (types that do: {', '.join(styled)})"]
    return []


def unknown_key(key: str, fmt: Format, type_name: str, where: str) -> str:
    """A key this format does not read: did-you-mean among its keys, else the types that read it."""
    close = did_you_mean(key, settable_keys(fmt))
    readers = readers_of(key)
    if close or not readers:
        everywhere = {k for f in FORMATS.values() for k in settable_keys(f)}
        return f"{where}.{key}: unknown key{close or did_you_mean(key, everywhere)}"
    shown = ", ".join(readers[:4]) + (", ..." if len(readers) > 4 else "")
    return (f"{where}.{key}: type '{type_name}' does not read this key (types that do: {shown}). "
            f"Did you mean type: {readers[0]}?")


def build_options(type_value: Any, extras: Mapping[str, Any], where: str,
                  merge_type: bool | None = None) -> tuple[FormatOptions | None, list[str]]:
    """The validated Options of one entry, or the problems (each with its dotted path).

    At check, `merge_type` says whether to merge what `type:` itself gives (the config layer validates a
    `type:` mapping); None: at run time, on a built DatasetConfig (merged)."""
    problems = type_problems(type_value, where, at_run=merge_type is None)
    if problems:
        return None, problems
    fmt = format_named(type_value)
    type_name = type_value.partition(":")[0] if isinstance(type_value, str) else "" if type_value is None else "user_defined"
    shown_name = type_name or "(none: pre-tokenized rows)"
    # a null for a key some format reads asks for nothing (axolotl configs leave keys blank)
    extras = {k: v for k, v in extras.items() if v is not None or not readers_of(k)}
    problems = [f"{where}.{k}: comes from `type:` itself (type: {type_name}:<{k}>), not from a key"
                for k in extras if k in fmt.Options.FROM_TYPE]
    try:
        opts = fmt.Options.model_validate({**extras, **(fmt.Options.from_type(type_value) if merge_type is not False else {})})
    except ValidationError as e:
        for err in e.errors():
            if err["type"] == "extra_forbidden":
                problems.append(unknown_key(str(err["loc"][0]), fmt, shown_name, where))
            else:
                problems.append(f"{where}.{render_error(err, fmt.Options)}")
        return None, problems
    return (None if problems else opts), problems


def check_datasets(data_section: Mapping[str, Any]) -> list[str]:
    """Every problem of the `datasets:` and `test_datasets:` entries' types and format options, and of
    the chat templates the config writes (chat_template: jinja, chat_template_jinja)."""
    problems = template_problems(data_section.get("chat_template"), data_section.get("chat_template_jinja"), "")
    if data_section.get("rl"):
        return problems + check_pair_datasets(data_section)
    for list_key in ("datasets", "test_datasets"):
        entries = data_section.get(list_key)
        if isinstance(entries, Mapping):
            entries = [entries]
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, Mapping):
                continue
            extras = {k: v for k, v in entry.items() if k not in COMMON_KEYS}
            t = entry.get("type")
            problems += build_options(t, extras, f"{list_key}[{i}]", merge_type=not isinstance(t, Mapping))[1]
            problems += template_problems(extras.get("chat_template"), extras.get("chat_template_jinja"),
                                          f"{list_key}[{i}].")
    return problems


def check_pair_datasets(data_section: Mapping[str, Any]) -> list[str]:
    """With `rl:`, each `type:` names a preference type (data/formats/preference), and its keys are that type's."""
    from newtune.data.formats.preference import PREFERENCE_FORMATS, PREFERENCE_LATER

    rl, problems = data_section["rl"], []
    for list_key in ("datasets", "test_datasets"):
        entries = data_section.get(list_key)
        for i, entry in enumerate([entries] if isinstance(entries, Mapping) else entries or []):
            if not isinstance(entry, Mapping):
                continue
            where, t = f"{list_key}[{i}]", entry.get("type")
            if t is None:
                problems.append(f"{where}.type: rl: {rl} needs a preference dataset type (e.g. chatml.intel, passthrough)")
            elif not isinstance(t, str) or t in PREFERENCE_LATER:
                shown = t if isinstance(t, str) else "user_defined (a type: mapping)"
                problems.append(f"{where}.type: preference dataset type '{shown}' is not supported by newtune yet")
            elif t not in PREFERENCE_FORMATS:
                problems.append(f"{where}.type: unknown preference dataset type '{t}' for rl: {rl}"
                                f"{did_you_mean(t, PREFERENCE_FORMATS)}")
            else:
                extras = {k: v for k, v in entry.items() if k not in COMMON_KEYS and v is not None}
                own = PREFERENCE_FORMATS[t].Options.model_fields
                problems += [f"{where}.{k}: preference type '{t}' does not read this key{did_you_mean(k, own)}"
                             for k in extras if k not in own]
    return problems


_OPTIONS: dict[int, tuple[DatasetConfig, FormatOptions]] = {}


def options_of(ds: DatasetConfig) -> FormatOptions:
    """The entry's validated Options (cached per entry object, which the cache keeps alive)."""
    hit = _OPTIONS.get(id(ds))
    if hit is not None and hit[0] is ds:
        return hit[1]
    opts, problems = build_options(ds.type, ds.options, f"datasets (path {ds.path})")
    if opts is None:
        raise ConfigError("config", problems)
    if len(_OPTIONS) > 256:
        _OPTIONS.clear()
    _OPTIONS[id(ds)] = (ds, opts)
    return opts
