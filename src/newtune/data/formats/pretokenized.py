"""Rows that are already tokenized (`input_ids`, optional `labels`/`attention_mask`), given with no `type:`.

Every row is checked as it is read: ids are integers inside the tokenizer's vocabulary, labels are -100
(not trained) or such an id, and each list has as many entries as input_ids (one min/max per list).
"""

from __future__ import annotations

from typing import Any

from newtune.data.types import IGNORE, Encoded, FormatContext, FormatOptions, Row
from newtune.errors import DataError

INT32 = 2**31
HINT = "re-tokenize the rows with the tokenizer of base_model (or tokenizer_config)"


def _ints(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        bad = next((v for v in value if type(v) is not int), None) if isinstance(value, list) else value
        raise DataError("", f"field '{name}' must be a list of integers, got {type(bad).__name__} {bad!r:.40}",
                        "write token ids as JSON integers")
    return value


def _check_range(values: list[int], name: str, vocab: int | None, ignore_ok: bool) -> None:
    """Every value in [0, vocab), or -100 where `ignore_ok` (labels)."""
    if not values:
        return
    low, high = min(values), max(values)
    if low < 0 and not (ignore_ok and low == IGNORE and min((v for v in values if v != IGNORE), default=0) >= 0):
        bad = next(v for v in values if v < 0 and not (ignore_ok and v == IGNORE))
        allowed = " (-100 marks a token that is not trained)" if ignore_ok else ""
        raise DataError("", f"field '{name}' holds {bad} at position {values.index(bad)}: ids are 0 or more{allowed}",
                        "use -100 for tokens that are not trained" if ignore_ok else HINT)
    if vocab is not None and high >= vocab:
        raise DataError("", f"field '{name}' holds {high} at position {values.index(high)}, outside the tokenizer's "
                        f"vocabulary ({vocab} tokens, ids 0 to {vocab - 1})", HINT)
    if high >= INT32:
        raise DataError("", f"field '{name}' holds {high} at position {values.index(high)}: token ids are stored as "
                        f"32-bit integers (below {INT32})", HINT)


def to_tokens(row: Row, opts: FormatOptions, ctx: FormatContext) -> Encoded:
    """input_ids as given; labels as given (else input_ids); tokens with attention_mask 0 are not trained."""
    if row.get("input_ids") is None:
        has = ", ".join(k for k, v in row.items() if v is not None) or "nothing"
        raise DataError("", f"missing field 'input_ids' (row has: {has})",
                        "rows without `type:` must hold input_ids; set type: to the dataset's format otherwise")
    ids = _ints(row["input_ids"], "input_ids")
    vocab = ctx.tokenizer.vocab_size
    _check_range(ids, "input_ids", vocab, ignore_ok=False)
    labels = _ints(row["labels"], "labels") if row.get("labels") is not None else list(ids)
    if len(labels) != len(ids):
        raise DataError("", f"field 'labels' has {len(labels)} entries but input_ids has {len(ids)}",
                        "give one label per token: the token's id where trained, -100 where not")
    _check_range(labels, "labels", vocab, ignore_ok=True)
    mask = row.get("attention_mask")
    if mask is not None:
        mask = _ints(mask, "attention_mask")
        if len(mask) != len(ids):
            raise DataError("", f"field 'attention_mask' has {len(mask)} entries but input_ids has {len(ids)}",
                            "give one mask value per token (1 attended, 0 not)")
        if 0 in mask:
            labels = [lab if m else IGNORE for lab, m in zip(labels, mask, strict=True)]
    return {"input_ids": list(ids), "labels": list(labels)}
