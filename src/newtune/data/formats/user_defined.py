"""`type:` given as a mapping (or `type: user_defined` with the keys on the dataset entry).

axolotl 0.21.0 user_defined.py: field_instruction/field_input/field_output/field_system name the row
fields; `format` (with {instruction} and {input}) or `no_input_format` renders the turn; a non-empty
system (the row's field_system value, else system_prompt) is rendered with `system_format`.
Defaults: "{instruction} {input} ", "{instruction} ", "{system}", fields instruction/input/output/system.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from newtune.config.data import InstructKeys
from newtune.data import rowfields as rf
from newtune.data.formats.instruct import prompt_response
from newtune.data.styles import USER_DEFINED_DEFAULTS, PromptStyle
from newtune.data.types import Format, FormatContext, FormatOptions, Row, Segment


class Options(FormatOptions, InstructKeys):
    """The instruct keys, from the `type:` mapping, else from the dataset entry itself."""

    @classmethod
    def from_type(cls, type_value: Any) -> dict[str, Any]:
        mapping = type_value.model_dump() if isinstance(type_value, BaseModel) else type_value
        return {k: v for k, v in mapping.items() if v is not None} if isinstance(mapping, Mapping) else {}


def settings(opts: Options) -> dict[str, str]:
    """The given keys, else axolotl's defaults."""
    return {key: default if getattr(opts, key) is None else getattr(opts, key)
            for key, default in USER_DEFINED_DEFAULTS.items()}


def user_defined(row: Row, opts: Options, ctx: FormatContext) -> list[Segment]:
    s = settings(opts)
    fmt = PromptStyle(s["format"], s["no_input_format"], s["system_format"])
    instruction = rf.need(row, s["field_instruction"])
    input = rf.opt(row, s["field_input"])
    output = rf.opt(row, s["field_output"])
    system = rf.opt(row, s["field_system"]) if s["field_system"] in row else s["system_prompt"]
    return prompt_response(fmt.render_parts(instruction, input, system), output, ctx)


TYPES = {"user_defined": Format(user_defined, "segments", Options,
                                "format strings and field names from the `type:` mapping",
                                prompt_field=lambda opts: opts.field_instruction or "instruction")}
