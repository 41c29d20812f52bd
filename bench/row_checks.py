"""What checking every row's fields costs: preprocessing with the checks against the same code without them.

    .venv/bin/python bench/row_checks.py [--alpaca 20000] [--chat 5000] [--repeats 5] [--tokenizer DIR]

Generates alpaca and chat_template rows (bench/preprocess.py's ~125-token rows), then encodes each dataset
into a fresh directory (data/pipeline.py `build`: read, format, tokenize, filter, write Arrow; no cache
lookup) `--repeats` times with the checks and as often without them, alternating, in this one process.
It also times the format step alone (rows already read; CPU seconds), where the checks run, and prints
the difference as a share of the whole preprocessing time: the number that load on a shared CPU disturbs
least. "Without" swaps in what the formats did before the checks: data/rowfields.py's accessors replaced by plain
`row[key]` / `str(value)` lookups, and chat_template's message reader by one that does not check role,
content and training flags. Prints the best and median seconds of each and the check's share. Prints
numbers, asserts nothing; the tokenizer is SmolLM2's (embedded) unless --tokenizer names a directory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from preprocess import write_data  # noqa: E402  (bench/preprocess.py: the same generated rows)


def lenient_accessors() -> dict[str, Callable[..., Any]]:
    """data/rowfields.py as the formats read rows before it: a lookup, a str() of whatever is there."""
    def need(row: Any, key: str, where: str = "", hint: str = "") -> Any:
        return row[key]

    def nullable(row: Any, key: str, where: str = "") -> str:
        value = row[key]
        return "" if value is None else str(value)

    def opt(row: Any, key: str, where: str = "") -> str:
        value = row.get(key)
        return "" if value is None else str(value)

    def flag(row: Any, key: str, where: str = "") -> Any:
        return row.get(key)

    def items(row: Any, key: str, where: str = "") -> Any:
        return row[key]

    return {"need": need, "nullable": nullable, "opt": opt, "flag": flag, "items": items}


def unchecked_to_message(raw: Any, keys: Any, where: str = "") -> Any:
    """chat_template.to_message without the role/content/flag checks (what it did before them)."""
    from newtune.data.formats import chat_template as ct
    from newtune.data.types import Message

    role = raw.get(keys.role)
    role = keys.aliases[role] if role in keys.aliases else ct.map_role(role, keys.aliases)
    content = raw.get(keys.content)
    detail = ct._detail(raw.get(keys.detail)) if keys.detail else None
    if isinstance(content, list):
        content, part_detail = ct.content_parts(content)
        detail = part_detail if part_detail is not None else detail
    train = raw.get(keys.training) if keys.training else None
    extra = {k: v for k, v in raw.items() if v is not None and k not in keys.skip}
    for prop, field in keys.other:
        if raw.get(field) is not None:
            extra[prop] = raw[field]
    if keys.split and role == "assistant" and isinstance(content, str):
        parts = ct.split_thinking(content)
        if parts is not None:
            extra[keys.thinking], content = parts
    if extra.get("tool_calls"):
        extra["tool_calls"] = ct._decode_function_field(extra["tool_calls"], "arguments", "tool call arguments")
    return Message(role, content, None if train is None else bool(train), detail, extra)


@contextmanager
def checks_off():
    from newtune.data import rowfields
    from newtune.data.formats import chat_template

    saved = {name: getattr(rowfields, name) for name in lenient_accessors()}
    saved_msg = chat_template.to_message
    for name, fn in lenient_accessors().items():
        setattr(rowfields, name, fn)
    chat_template.to_message = unchecked_to_message
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(rowfields, name, fn)
        chat_template.to_message = saved_msg


def timed_build(data: Any, tok: Any, work: Path) -> float:
    from newtune.data.pipeline import build

    with tempfile.TemporaryDirectory(dir=work) as out:
        start = time.perf_counter()
        build(data, tok, Path(out), 0)
        return time.perf_counter() - start


def timed_render(data: Any, tok: Any) -> float:
    """CPU seconds of the Python half alone (read rows, run the format; no tokenizing): where the checks are."""
    from newtune.data.rowcodec import format_context, render_rows
    from newtune.data.sources import iter_batches

    ds, ctx = data.datasets[0], format_context(data, tok)
    batches = list(iter_batches(ds))
    start = time.process_time()
    for batch in batches:
        render_rows(batch.rows, ds, data, tok, ctx)
    return time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alpaca", type=int, default=20000)
    ap.add_argument("--chat", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tokenizer", default=None, help="tokenizer directory (default: the embedded SmolLM2)")
    args = ap.parse_args()

    from newtune.data.tokenizer import tokenizer_for
    from newtune.load import load_config

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind, n in (("alpaca", args.alpaca), ("chat_template", args.chat)):
            path = write_data(kind, n, work)
            raw = {"datasets": [{"path": str(path), "type": kind}], "sequence_len": 2048}
            if args.tokenizer:
                raw["base_model"] = args.tokenizer
            cfg = load_config(None, raw=raw)
            tok = tokenizer_for(cfg.model, light=True)
            timed_build(cfg.data, tok, work)  # warm-up: imports, first-call costs
            on, off = [], []
            for _ in range(args.repeats):
                on.append(timed_build(cfg.data, tok, work))
                with checks_off():
                    off.append(timed_build(cfg.data, tok, work))
            r_on, r_off = [], []
            for _ in range(args.repeats):
                r_on.append(timed_render(cfg.data, tok))
                with checks_off():
                    r_off.append(timed_render(cfg.data, tok))
            full = statistics.median(off)
            delta = min(r_on) - min(r_off)
            print(f"{kind:14s} {n:6d} rows  preprocess (build, wall): checked best {min(on):.3f}s median "
                  f"{statistics.median(on):.3f}s, unchecked best {min(off):.3f}s median {full:.3f}s "
                  f"({(statistics.median(on) - full) / full:+.1%})", flush=True)
            print(f"{'':14s} {'':6s}       format step alone (CPU): checked best {min(r_on):.3f}s, unchecked best "
                  f"{min(r_off):.3f}s: the checks cost {delta:+.3f}s = {delta / full:+.1%} of preprocessing", flush=True)


if __name__ == "__main__":
    main()
