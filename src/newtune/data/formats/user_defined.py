"""`type:` given as a mapping (or `type: user_defined` with the keys on the dataset entry).

axolotl 0.21.0 user_defined.py: field_instruction/field_input/field_output/field_system name the row
fields; `format` (with {instruction} and {input}) or `no_input_format` renders the turn; a non-empty
system (the row's field_system value, else system_prompt) is rendered with `system_format`.
Defaults: "{instruction} {input} ", "{instruction} ", "{system}", fields instruction/input/output/system.
"""

from __future__ import annotations

from newtune.config.data import DatasetConfig, UserDefinedType
from newtune.data.formats.instruct import prompt_response, text
from newtune.data.styles import USER_DEFINED_DEFAULTS, PromptStyle
from newtune.data.types import Format, FormatContext, Row, Segment


def settings(ds: DatasetConfig) -> dict[str, str]:
    """The mapping's keys, else the same keys on the dataset entry, else axolotl's defaults."""
    mapping = ds.type if isinstance(ds.type, UserDefinedType) else None
    out = {}
    for key, default in USER_DEFINED_DEFAULTS.items():
        value = getattr(mapping, key, None) if mapping is not None else None
        out[key] = value if value is not None else getattr(ds, key) if getattr(ds, key) is not None else default
    return out


def user_defined(row: Row, ds: DatasetConfig, ctx: FormatContext) -> list[Segment]:
    s = settings(ds)
    fmt = PromptStyle(s["format"], s["no_input_format"], s["system_format"])
    instruction = row[s["field_instruction"]]
    input = text(row[s["field_input"]]) if s["field_input"] in row else ""
    output = text(row[s["field_output"]]) if s["field_output"] in row else ""
    system = text(row[s["field_system"]]) if s["field_system"] in row else s["system_prompt"]
    return prompt_response(fmt.render(instruction, input, system), output, ctx)


TYPES = {"user_defined": Format(user_defined, "segments", "format strings and field names from the `type:` mapping")}
