"""Views of encoded rows: `show()` for tests and --debug, coloured token/text views, the --dump writer,
the closing summary and the packing report."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newtune.config.data import DataConfig
from newtune.data.types import IGNORE, Encoded, Tokenizer

if TYPE_CHECKING:
    import numpy as np
    from rich.console import Console

    from newtune.data.rows import PreparedRows


def show(enc: Encoded, tok: Tokenizer) -> str:
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


VISIBLE = str.maketrans({" ": "␣", "\n": "\\n", "\t": "\\t", "\r": "\\r"})


def visible_tokens(ids: list[int], tok: Tokenizer) -> list[str]:
    """Each token as the text it adds to the decoded row, whitespace made visible: `␣five`, `\\n`.

    Read from growing prefixes of the row (a lone SentencePiece token decodes without its leading space);
    a token that ends inside a UTF-8 character shows its raw piece, the one completing it the character. Quadratic: for the few rows --debug shows.
    """
    pieces = tok.convert_ids_to_tokens(list(ids))
    out, before = [], ""
    for i, piece in enumerate(pieces):
        text = tok.decode(list(ids[: i + 1]), skip_special_tokens=False)
        added = text[len(before):] if text.startswith(before) else ""
        if not added or "\ufffd" in added:
            out.append(piece)  # part of a character: the token that completes it shows the character
            continue
        out.append(added.translate(VISIBLE))
        before = text
    return out


def debug_tokens(enc: Encoded, tok: Tokenizer, pieces: bool = False) -> str:
    """Rich markup, axolotl's --debug view: each token as `token(label, id)`, trained green, masked dim.

    Tokens are decoded with visible whitespace (`␣five(-100, 3716)`); `pieces` shows the tokenizer's raw
    pieces instead (`Ġfive`)."""
    from rich.markup import escape

    ids = list(enc["input_ids"])
    shown = tok.convert_ids_to_tokens(ids) if pieces else visible_tokens(ids, tok)
    parts = []
    for text, tid, label in zip(shown, ids, enc["labels"], strict=True):
        style = "dim" if label == IGNORE else "green"
        parts.append(f"[{style}]{escape(text)}({label}, {tid})[/{style}]")
    return " ".join(parts)


def debug_text(enc: Encoded, tok: Tokenizer, brackets: bool = False) -> str:
    """Rich markup: the decoded text, trained spans bold, masked spans dimmed; `brackets` (no terminal, so no
    styles) puts each masked span in [[ ]] instead, so the distinction survives a log file."""
    from rich.markup import escape

    out, run, masked = [], [], None
    for tid, label in zip(enc["input_ids"], enc["labels"], strict=True):
        m = label == IGNORE
        if masked is not None and m != masked:
            out.append(_span(tok.decode(run), masked, escape, brackets))
            run = []
        run.append(tid)
        masked = m
    if run:
        out.append(_span(tok.decode(run), bool(masked), escape, brackets))
    return "".join(out)


def _span(text: str, masked: bool, escape: Any, brackets: bool) -> str:
    if brackets:
        return escape(f"[[{text}]]") if masked else escape(text)
    return f"[dim]{escape(text)}[/dim]" if masked else f"[bold]{escape(text)}[/bold]"


def check_dump(path: Path, data: DataConfig, protected: Iterable[Path] = ()) -> None:
    """Refuse a --dump path before any work: a directory, a path through a file, or a file newtune reads
    (a dataset file of the config, or `protected`, e.g. the config file itself), which the dump would replace."""
    from newtune.data.sources import local_files
    from newtune.errors import NewtuneError
    from newtune.paths import blocking_file

    path = Path(path).expanduser()
    if path.is_dir():
        raise NewtuneError(f"--dump {path}", "is a directory; --dump takes a file name", "e.g. --dump rows.jsonl")
    blocker = blocking_file(path.parent)
    if blocker is not None:
        raise NewtuneError(f"--dump {path}", f"cannot be created: {blocker} is a file", "choose another path")
    if not path.exists():
        return
    read = [*protected]
    for ds in [*data.datasets, *(data.test_datasets or [])]:
        try:
            read += local_files(ds) or []
        except NewtuneError:
            continue  # the dataset's own problem is reported when it is read
    for other in read:
        if Path(other).exists() and path.samefile(other):
            raise NewtuneError(f"--dump {path}", f"is {other}, a file this run reads; the dump would replace it",
                               "write the dump to a new file, e.g. --dump dump.jsonl")


def write_dump(rows: Iterable[Encoded], path: Path) -> int:
    """Every row as one JSON line (input_ids, labels, attention_mask), byte-identical to bench/axolotl_dump.py's.

    Written to a temp file, then renamed; temp files of dumps that were killed are removed first.
    """
    from newtune.data.cache import owner_tag, remove_dead_temps

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temps(path.parent, f".{path.name}.tmp-")
    tmp = path.with_name(f".{path.name}.tmp-{owner_tag()}")
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                ids = row["input_ids"]
                f.write(json.dumps({"input_ids": ids, "labels": row["labels"], "attention_mask": [1] * len(ids)}))
                f.write("\n")
                n += 1
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


def print_rows(rows: Iterable[Encoded], tok: Tokenizer, console: Console, text_only: bool, pieces: bool = False) -> None:
    """Rows as --debug shows them: tokens as token(label, id), or text with masked spans dimmed (bracketed
    where the console is no terminal)."""
    for i, row in enumerate(rows):
        console.rule(f"row {i}")
        view = debug_text(row, tok, brackets=not console.is_terminal) if text_only else debug_tokens(row, tok, pieces)
        console.print(view, highlight=False, soft_wrap=True)


def preview_stream(data: DataConfig, tok: Tokenizer, console: Console, n: int, text_only: bool, pieces: bool = False) -> None:
    from itertools import islice

    from newtune.data.formats.pretraining import prepare_stream

    print_rows(islice(prepare_stream(data, tok), n), tok, console, text_only, pieces)
    console.print("pretraining_dataset is streamed during training; nothing to cache")


def print_summary(prepared: PreparedRows, data: DataConfig, console: Console) -> None:
    """The closing table: rows, tokens, trainable share, drops, zero-trainable rows, lengths, speed."""
    from rich.table import Table

    s = prepared.summary
    table = Table(title="prepared data" + (" (from cache)" if s.cached else ""), show_header=True)
    table.add_column("")
    table.add_column("train", justify="right")
    if s.test is not None:
        table.add_column("test_datasets", justify="right")
    parts = [s.train] + ([s.test] if s.test is not None else [])

    def add(label: str, fn: Any) -> None:
        table.add_row(label, *[fn(p) for p in parts])

    add("rows read", lambda p: f"{p.rows_in:,}")
    add("rows kept", lambda p: f"{p.rows_out:,}")
    for reason in dict.fromkeys(r for p in parts for r in p.dropped):
        add(f"dropped: {reason}", lambda p, r=reason: f"{p.dropped.get(r, 0):,}")
    if data.excess_length_strategy == "truncate":
        add(f"truncated to {data.sequence_len}", lambda p: f"{p.truncated:,}")
    add("tokens", lambda p: f"{p.tokens:,}")
    add("trainable tokens", lambda p: f"{p.trainable:,} ({p.trainable / max(p.tokens, 1):.1%})")
    add("rows with nothing to train", lambda p: f"{p.zero_trainable:,}")
    console.print(table)
    lengths = prepared.train.lengths()
    if len(lengths):
        import numpy as np

        console.print(f"train rows: {s.train_rows:,}, eval rows: {s.eval_rows:,}; length min {lengths.min()}, "
                      f"mean {lengths.mean():.1f}, p50 {int(np.percentile(lengths, 50))}, "
                      f"p95 {int(np.percentile(lengths, 95))}, max {lengths.max()} (sequence_len {data.sequence_len})")
    rate = f", {(s.train.rows_in + (s.test.rows_in if s.test else 0)) / s.seconds:,.0f} rows/s" if not s.cached else ""
    console.print(f"{'loaded' if s.cached else 'prepared'} in {s.seconds:.2f} s{rate} → {s.cache_path}")
    for label, p in (("train", s.train), ("test_datasets", s.test)):
        if p is not None and p.zero_trainable:
            console.print(f"[yellow]warning:[/yellow] {p.zero_trainable} {label} rows have no trainable token "
                          f"(every label is masked), e.g. {', '.join(p.zero_trainable_rows)}; check the field "
                          "names, roles_to_train and train_on_inputs", highlight=False)



def packing_line(lengths: np.ndarray, capacity: int, seed: int | None = 0, bins: Any = None) -> str:
    """`packing: 500 rows → 122 bins of 512 tokens, 98.3% full (padded to sequence_len: 24.0%)`.

    `bins`: the ones training packs (epoch 0's plan); without them, the same seeded first-fit is run here."""
    import numpy as np

    from newtune.data.pack import pack_lengths, packing_efficiency

    lengths = np.asarray(lengths, dtype=np.int64)
    if bins is None:
        bins = pack_lengths(lengths, capacity=capacity, seed=seed)
    packed = packing_efficiency(lengths, bins, capacity)
    padded = float(lengths.sum()) / max(len(lengths) * capacity, 1)
    return (f"packing: {len(lengths):,} rows → {len(bins):,} bins of {capacity} tokens, {packed:.1%} full "
            f"(padded to sequence_len: {padded:.1%})")
