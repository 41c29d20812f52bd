"""`type: input_output`: template-free rows of text segments, each trained or not."""

from __future__ import annotations

from newtune.data import rowfields as rf
from newtune.data.types import FormatContext, FormatOptions, Row, Segment


def to_segments(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    """Each segment's `text` (text) and `label` (strictly true or false: "no" and 0 are refused)."""
    out = []
    for i, s in enumerate(rf.items(row, "segments")):
        where = f"segments[{i}]"
        if not isinstance(s, dict):
            raise rf.wrong_type(where, s, "an object with text and label")
        label = rf.flag(s, "label", where)
        if label is None:
            raise rf.missing(s, "label", where, "give every segment a label: true (trained) or false")
        out.append(Segment(rf.need(s, "text", where), train=label))
    return out
