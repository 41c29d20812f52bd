"""`type: completion`: raw text, all trained; rows longer than sequence_len become several rows.

As axolotl 0.21's completion strategy: the tokenizer's own BOS (if it adds one), the text, and EOS
unless the text already ends with it; at most 64 × sequence_len tokens, then cut into sequence_len chunks.
"""

from __future__ import annotations

from pydantic import Field

from newtune.data import rowfields as rf
from newtune.data.types import Encoded, FormatContext, FormatOptions, Row, Segment

MAX_CHUNKS = 64  # axolotl: max_length = sequence_len * 64


class Options(FormatOptions):
    field: str | None = Field(None, description="The row field holding the text (default text).")


def to_segments(row: Row, ds: Options, ctx: FormatContext) -> list[Segment]:
    text = rf.need(row, ds.field or "text", hint="set `field:` on this dataset to the field that holds the text")
    if not text:
        return []
    tok = ctx.tokenizer
    segs = [Segment(tok.bos_token, True)] if tok.add_bos and tok.bos_token else []
    segs.append(Segment(text, True))
    if tok.eos_token and not text.endswith(tok.eos_token):
        segs.append(Segment(tok.eos_token, True))
    return segs


def split_chunks(enc: Encoded, sequence_len: int) -> list[Encoded]:
    """One long encoded text → consecutive chunks of at most sequence_len tokens."""
    ids = enc["input_ids"][: sequence_len * MAX_CHUNKS]
    labels = enc["labels"][: sequence_len * MAX_CHUNKS]
    if len(ids) <= sequence_len:
        return [{"input_ids": ids, "labels": labels}]
    return [{"input_ids": ids[i : i + sequence_len], "labels": labels[i : i + sequence_len]}
            for i in range(0, len(ids), sequence_len)]
