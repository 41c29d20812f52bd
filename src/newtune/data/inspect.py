"""Views of encoded rows: `show()` for tests and --debug, coloured token/text views, the --dump writer."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from newtune.data.types import IGNORE, Encoded


def show(enc: Encoded, tok: Any) -> str:
    """Token pieces separated by spaces; masked runs in one pair of brackets: `▁hi [▁good bye] ▁fare`."""
    pieces = tok.convert_ids_to_tokens(list(enc["input_ids"]))
    out: list[str] = []
    masked_run: list[str] = []
    for piece, label in zip(pieces, enc["labels"], strict=True):
        if label == IGNORE:
            masked_run.append(piece)
            continue
        if masked_run:
            out.append("[" + " ".join(masked_run) + "]")
            masked_run = []
        out.append(piece)
    if masked_run:
        out.append("[" + " ".join(masked_run) + "]")
    return " ".join(out)


def debug_tokens(enc: Encoded, tok: Any) -> str:
    """Rich markup, axolotl's --debug view: each token as `token(label, id)`, trained green, masked red."""
    from rich.markup import escape

    pieces = tok.convert_ids_to_tokens(list(enc["input_ids"]))
    parts = []
    for piece, tid, label in zip(pieces, enc["input_ids"], enc["labels"], strict=True):
        colour = "red" if label == IGNORE else "green"
        parts.append(f"[{colour}]{escape(piece)}[/{colour}]([white]{label}, {tid}[/white])")
    return " ".join(parts)


def debug_text(enc: Encoded, tok: Any) -> str:
    """Rich markup: the decoded text, trained spans plain, masked spans dimmed."""
    from rich.markup import escape

    out, run, masked = [], [], None
    for tid, label in zip(enc["input_ids"], enc["labels"], strict=True):
        m = label == IGNORE
        if masked is not None and m != masked:
            out.append(_span(tok.decode(run), masked, escape))
            run = []
        run.append(tid)
        masked = m
    if run:
        out.append(_span(tok.decode(run), bool(masked), escape))
    return "".join(out)


def _span(text: str, masked: bool, escape: Any) -> str:
    return f"[dim]{escape(text)}[/dim]" if masked else f"[bold]{escape(text)}[/bold]"


def write_dump(rows: Iterable[Encoded], path: Path) -> int:
    """Every row as one JSON line (input_ids, labels, attention_mask); written to a temp file, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                ids = row["input_ids"]
                f.write(json.dumps({"input_ids": ids, "labels": row["labels"], "attention_mask": [1] * len(ids)},
                                   separators=(",", ":")))
                f.write("\n")
                n += 1
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n
