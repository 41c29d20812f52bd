"""Rows that are already tokenized (`input_ids`, optional `labels`/`attention_mask`), given with no `type:`."""

from __future__ import annotations

from typing import Any

from newtune.data.types import IGNORE, Encoded, FormatContext, FormatOptions, Row


def _ints(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise TypeError(f"field '{name}' must be a list of integers")
    return value


def to_tokens(row: Row, opts: FormatOptions, ctx: FormatContext) -> Encoded:
    """input_ids as given; labels as given (else input_ids); tokens with attention_mask 0 are not trained."""
    ids = _ints(row["input_ids"], "input_ids")
    labels = _ints(row["labels"], "labels") if row.get("labels") is not None else list(ids)
    if len(labels) != len(ids):
        raise ValueError(f"labels has {len(labels)} entries but input_ids has {len(ids)}")
    mask = row.get("attention_mask")
    if mask is not None:
        mask = _ints(mask, "attention_mask")
        if len(mask) != len(ids):
            raise ValueError(f"attention_mask has {len(mask)} entries but input_ids has {len(ids)}")
        if 0 in mask:
            labels = [lab if m else IGNORE for lab, m in zip(labels, mask, strict=True)]
    return {"input_ids": list(ids), "labels": list(labels)}
