"""Rows of one dataset → Encoded, dispatching on the format's kind. Shared by the pipeline and tests.

- "segments": the format renders the row (style/template-free); each segment is tokenized alone.
- "conversation": the format extracts messages; data/chat.py renders them once through the chat
  template into segments; the whole text is tokenized once and labelled by character offset.
- "tokens": the row already holds ids and labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from newtune.config.data import DataConfig, DatasetConfig
from newtune.data.columns import TokenColumns, from_encoded
from newtune.data.encode import encode_grouped, encode_joined, encode_pieces_columns
from newtune.data.formats import completion
from newtune.data.options import format_of, options_of
from newtune.data.tokenizer import tokenizer_info
from newtune.data.types import Encoded, FormatContext, RenderedKind, Row, Tokenizer

# Types whose one row may become several training rows: name → (Encoded, sequence_len) → rows.
ROW_SPLITTERS = {"completion": completion.split_chunks}


def format_context(data: DataConfig, tokenizer: Tokenizer) -> FormatContext:
    return FormatContext(
        tokenizer=tokenizer_info(tokenizer),
        train_on_inputs=data.train_on_inputs,
        sequence_len=data.sequence_len,
        default_system_message=data.default_system_message,
    )


def encode_rows(rows: Sequence[Row], ds: DatasetConfig, data: DataConfig, tokenizer: Tokenizer,
                ctx: FormatContext | None = None) -> list[Encoded]:
    """Encode a batch of rows of dataset `ds`. Errors in a row propagate to the caller (which names the row)."""
    kind, outputs = render_rows(rows, ds, data, tokenizer, ctx)
    if kind == "segments":
        return encode_pieces_columns(outputs, tokenizer).to_encoded()
    return _encode_rendered(kind, outputs, tokenizer)


def encode_rows_columns(rows: Sequence[Row], ds: DatasetConfig, data: DataConfig, tokenizer: Tokenizer,
                        ctx: FormatContext | None = None) -> TokenColumns:
    """`encode_rows` as flat columns (one row each, in order)."""
    return tokenize_rendered(*render_rows(rows, ds, data, tokenizer, ctx), tokenizer)


def render_rows(rows: Sequence[Row], ds: DatasetConfig, data: DataConfig, tokenizer: Tokenizer,
                ctx: FormatContext | None = None) -> tuple[RenderedKind, list[Any]]:
    """The Python half of encoding: each row through its format (and a conversation through the chat
    template), ready for `tokenize_rendered`. (kind, outputs)."""
    fmt, opts = format_of(ds), options_of(ds)
    ctx = ctx or format_context(data, tokenizer)
    fn = fmt.fn
    outputs = [fn(row, opts, ctx) for row in rows]
    if fmt.kind == "conversation":
        from newtune.data.chat import render_segments

        return "joined", [render_segments(conv, ds, data, tokenizer) for conv in outputs]
    return fmt.kind, outputs


def tokenize_rendered(kind: RenderedKind, outputs: list[Any], tokenizer: Tokenizer) -> TokenColumns:
    """The tokenizer half of encoding: rendered rows → flat columns; segment formats build no per-row lists."""
    if kind == "segments":
        return encode_pieces_columns(outputs, tokenizer)
    return from_encoded(_encode_rendered(kind, outputs, tokenizer))


def _encode_rendered(kind: RenderedKind, outputs: list[Any], tokenizer: Tokenizer) -> list[Encoded]:
    if kind == "pieces":
        return encode_grouped(outputs, tokenizer)
    if kind == "joined":
        return encode_joined(outputs, tokenizer, overlap=True)
    return outputs  # "tokens": the rows are Encoded already


def expand_rows(encoded: list[Encoded], ds: DatasetConfig, sequence_len: int) -> list[list[Encoded]]:
    """Each encoded row → the training rows it becomes (one, or chunks for `completion`)."""
    split = ROW_SPLITTERS.get(ds.type_name) if ds.type is not None else None
    if split is None:
        return [[e] for e in encoded]
    return [split(e, sequence_len) for e in encoded]


def expand_columns(cols: TokenColumns, ds: DatasetConfig, sequence_len: int) -> TokenColumns:
    """`expand_rows` on columns: `completion` rows longer than sequence_len become chunks (`source` tells whose)."""
    import numpy as np

    split = ROW_SPLITTERS.get(ds.type_name) if ds.type is not None else None
    if split is None:
        return cols
    if split is completion.split_chunks:
        return cols.truncate(sequence_len * completion.MAX_CHUNKS).chunk(sequence_len)
    parts = expand_rows(cols.to_encoded(), ds, sequence_len)
    out = from_encoded([e for part in parts for e in part])
    out.source = np.repeat(cols.source, [len(part) for part in parts])
    return out


def encode_row(ds: DatasetConfig | str, row: Row, tokenizer: Tokenizer, **data_keys: Any) -> Encoded:
    """One row → Encoded; for tests and `--debug`. `ds` may be just a type name; data_keys override DataConfig."""
    if isinstance(ds, str):
        ds = DatasetConfig(path="-", type=ds)
    data = DataConfig(datasets=[ds], **data_keys)
    return encode_rows([row], ds, data, tokenizer)[0]
