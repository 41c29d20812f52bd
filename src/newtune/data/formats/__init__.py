"""FORMATS: the one dict from every `type:` name to its Format."""

from __future__ import annotations

from newtune.data.formats import completion, input_output
from newtune.data.types import Format

FORMATS: dict[str, Format] = {
    "completion": Format(completion.to_segments, "segments", "raw text (field: text), all trained, long rows split"),
    "input_output": Format(input_output.to_segments, "segments", "text segments, each with label true/false"),
}
