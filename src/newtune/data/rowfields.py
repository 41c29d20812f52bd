"""Every row's fields checked as formats read them: text is text, flags are true/false, lists are lists.

Formats call these on every row (a dict lookup and an isinstance: nothing next to tokenizing). A bad value
raises a DataError whose `where` is empty or the field's place in the row (`messages[2]`); the pipeline
puts the file and line in front, and the message names the fields the row does have. A JSON row that
lacks a key is told apart from one whose value is null (Parquet and CSV rows only have nulls):
`need` refuses both, `nullable` (the response fields axolotl reads as empty when null) refuses only the
missing key, `opt` takes both as empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from newtune.errors import DataError


def _has(row: Mapping[str, Any]) -> str:
    return ", ".join(str(k) for k, v in row.items() if v is not None) or "nothing"


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def missing(row: Mapping[str, Any], key: str, where: str = "", hint: str = "") -> DataError:
    what = "missing field" if where == "" else "no field"
    return DataError(where, f"{what} '{key}' ({'row' if where == '' else 'it'} has: {_has(row)})",
                     hint or "fix the row, or map the field names in this dataset's config")


def wrong_type(key: str, value: Any, expected: str, where: str = "") -> DataError:
    return DataError(where, f"field '{key}' must be {expected}, got {type(value).__name__} {_shown(value)}",
                     "fix the row: every row of a dataset must have the same field types")


def _text(key: str, value: Any, where: str) -> str:
    """A value that is not a plain str or None: a str subclass as str, anything else refused."""
    if isinstance(value, str):
        return str(value)
    raise wrong_type(key, value, "text", where)


def need(row: Mapping[str, Any], key: str, where: str = "", hint: str = "") -> str:
    """row[key], which must be text (missing or null: an error)."""
    value = row.get(key)
    if type(value) is str:
        return value
    if value is None:
        raise missing(row, key, where, hint)
    return _text(key, value, where)


def nullable(row: Mapping[str, Any], key: str, where: str = "") -> str:
    """row[key] as text: the key must be there; a null is empty, as axolotl reads a null response."""
    value = row.get(key)
    if type(value) is str:
        return value
    if value is None:
        if key not in row:
            raise missing(row, key, where)
        return ""
    return _text(key, value, where)


def opt(row: Mapping[str, Any], key: str, where: str = "") -> str:
    """row[key] as text; missing or null is empty (axolotl tests optional fields for truthiness)."""
    value = row.get(key)
    if type(value) is str:
        return value
    if value is None:
        return ""
    return _text(key, value, where)


def flag(row: Mapping[str, Any], key: str, where: str = "", weights: bool = False) -> bool | None:
    """row[key] as a strict boolean: true or false (JSON), or null; "no" is refused. `weights`: 0 and 1 too
    (axolotl's per-message `weight` convention)."""
    value = row.get(key)
    if value is None or type(value) is bool:
        return value
    if weights and type(value) in (int, float) and value in (0, 1):
        return bool(value)
    allowed = "true or false (or 0/1)" if weights else "true or false"
    raise DataError(where, f"field '{key}' must be {allowed}, got {type(value).__name__} {_shown(value)}",
                    "write the flag as a JSON boolean (true/false), not a string" + ("" if weights else " or number"))


def items(row: Mapping[str, Any], key: str, where: str = "") -> list[Any]:
    """row[key], which must be a list (missing or null: an error)."""
    value = row.get(key)
    if isinstance(value, list):
        return value
    if value is None:
        raise missing(row, key, where)
    raise wrong_type(key, value, "a list", where)
