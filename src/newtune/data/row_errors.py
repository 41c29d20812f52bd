"""A batch that fails to encode: find the row, and name it with its file, line and field."""

from __future__ import annotations

from newtune.config.data import DataConfig, DatasetConfig
from newtune.data.columns import TokenColumns
from newtune.data.rowcodec import encode_rows, encode_rows_columns
from newtune.data.sources import RowBatch
from newtune.data.types import FormatContext, Tokenizer
from newtune.errors import DataError, NewtuneError


def encode_batch(batch: RowBatch, ds: DatasetConfig, data: DataConfig, tok: Tokenizer, ctx: FormatContext) -> TokenColumns:
    """Encode a batch; if it fails, find the failing row and name it with its file and line."""
    try:
        return encode_rows_columns(batch.rows, ds, data, tok, ctx)
    except Exception as e:
        batch_error = e
    for row, where in zip(batch.rows, batch.where, strict=True):
        try:
            encode_rows([row], ds, data, tok, ctx)
        except NewtuneError as e:
            label = f"{where} ({ds.type_name or 'pre-tokenized'})"
            raise DataError(f"{label}: {e.where}" if e.where else label, e.problem, e.hint) from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise row_error(missing_field(row, ds, data, tok, ctx) or e, row, where, ds) from None
    raise batch_error  # no single row fails: a bug of ours, keep its traceback


def missing_field(row: dict, ds: DatasetConfig, data: DataConfig, tok: Tokenizer, ctx: FormatContext) -> KeyError | None:
    """Null fields (JSON null, or absent where other rows have them) that the format needs, as a KeyError."""
    present = {k: v for k, v in row.items() if v is not None}
    if len(present) == len(row):
        return None
    try:
        encode_rows([present], ds, data, tok, ctx)
    except KeyError as e:
        return e
    except Exception:
        return None
    return None


def row_error(e: Exception, row: dict, where: str, ds: DatasetConfig) -> DataError:
    fields = ", ".join(k for k, v in row.items() if v is not None) or "no fields"
    label = f"{where} ({ds.type_name or 'pre-tokenized'})"
    if isinstance(e, KeyError):
        return DataError(label, f"missing field {e.args[0]!r} (row has: {fields})",
                         "fix the row, or map the field names in this dataset's config")
    return DataError(label, f"{type(e).__name__}: {e} (row has: {fields})",
                     "check the types of this row's fields against the dataset type")
