"""`type: passthrough`: the row's own prompt, chosen and rejected strings, unchanged (axolotl's passthrough)."""

from __future__ import annotations

from typing import Any

from newtune.data.formats.preference.pair import Pair, text
from newtune.data.types import Row


def to_pair(row: Row, _ds: Any, _ctx: Any) -> Pair:
    return Pair(text(row, "prompt"), text(row, "chosen"), text(row, "rejected"))
