"""`type: input_output`: template-free rows of text segments, each trained or not."""

from __future__ import annotations

from newtune.data.types import FormatContext, FormatOptions, Row, Segment


def to_segments(row: Row, opts: FormatOptions, ctx: FormatContext) -> list[Segment]:
    return [Segment(s["text"], train=bool(s["label"])) for s in row["segments"]]
