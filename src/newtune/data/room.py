"""Preflight: does sequence_len leave room for text after the prompt format's own tokens?"""

from __future__ import annotations

from typing import Any

from newtune.config.data import DataConfig, DatasetConfig
from newtune.data.options import options_of
from newtune.data.rowcodec import encode_rows
from newtune.data.sources import iter_batches
from newtune.data.types import FormatContext, Tokenizer
from newtune.errors import DataError

ROLE_KEYS = frozenset({"role", "from", "type", "name"})  # structure, not text: kept when blanking a row


def blank_text(value: Any, keep: frozenset[str]) -> Any:
    """`value` with every string emptied, except the values of keys in `keep` (roles and the like)."""
    if isinstance(value, str):
        return ""
    if isinstance(value, dict):
        return {k: v if k in keep and isinstance(v, str) else blank_text(v, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [blank_text(v, keep) for v in value]
    return value


def template_tokens(ds: DatasetConfig, data: DataConfig, tok: Tokenizer, ctx: FormatContext) -> tuple[int, str] | None:
    """Tokens of the dataset's first row with all its text emptied: what the prompt format adds by itself
    (system prompt, role markers, BOS/EOS). None for pre-tokenized rows or when the empty row is refused."""
    if ds.type is None:
        return None
    batch = next(iter(iter_batches(ds, batch_size=1)), None)
    if batch is None or not batch.rows:
        return None
    opts = options_of(ds)  # the role field stays (chat formats name it), all text is emptied
    mappings = getattr(opts, "message_property_mappings", None) or {}
    keep = ROLE_KEYS | {k for k in (getattr(opts, "message_field_role", None), mappings.get("role")) if k}
    try:
        encoded = encode_rows([blank_text(batch.rows[0], keep)], ds, data, tok, ctx)
    except Exception:  # an empty field the format refuses: the rows themselves will say what is wrong
        return None
    return (max(len(e["input_ids"]) for e in encoded), batch.where[0]) if encoded else None


def check_template_room(ds: DatasetConfig, name: str, data: DataConfig, tok: Tokenizer, ctx: FormatContext) -> None:
    """sequence_len must leave room for text after the prompt format's own tokens."""
    found = template_tokens(ds, data, tok, ctx)
    if found is not None and found[0] >= data.sequence_len:
        raise DataError("sequence_len", f"sequence_len ({data.sequence_len}) leaves no room for text: the prompt "
                        f"format of {name} (type {ds.type_name}) takes {found[0]} tokens by itself "
                        f"(its first row, {found[1]}, with every text field empty)",
                        f"raise sequence_len well above {found[0]}")
