"""Segments → token ids and labels. The only code that writes labels.

Pure functions: no config, globals or I/O. `add_special_tokens=False` everywhere: templates and
styles write BOS/EOS into the text themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

from newtune.data.types import IGNORE, Encoded, Segment


def encode_pieces(batch: Sequence[Sequence[Segment]], tokenizer: Any) -> list[Encoded]:
    """Tokenize each segment on its own (as axolotl does for styles and input_output), batched.

    One call into the Rust tokenizer per batch; per-row work is list concatenation only.
    """
    texts = [s.text for segs in batch for s in segs]
    pieces = iter(tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else iter(())
    out: list[Encoded] = []
    for segs in batch:
        ids: list[int] = []
        labels: list[int] = []
        for s in segs:
            p = next(pieces)
            ids += p
            labels += p if s.train else repeat(IGNORE, len(p))
        out.append({"input_ids": ids, "labels": labels})
    return out


def encode_joined(batch: Sequence[Sequence[Segment]], tokenizer: Any) -> list[Encoded]:
    """Tokenize each row's concatenated text once and label tokens by character offset.

    A token is trained when the character it starts at lies in a trained segment. Used for chat
    templates, where the rendered conversation must be tokenized as one string.
    """
    texts = ["".join(s.text for s in segs) for segs in batch]
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True) if texts else {"input_ids": []}
    out: list[Encoded] = []
    for segs, ids, offsets in zip(batch, enc["input_ids"], enc.get("offset_mapping", []), strict=True):
        bounds, flags, pos = [], [], 0
        for s in segs:
            pos += len(s.text)
            bounds.append(pos)
            flags.append(s.train)
        labels: list[int] = []
        k = 0
        for tid, (start, end) in zip(ids, offsets, strict=True):
            while k < len(bounds) - 1 and start >= bounds[k]:
                k += 1
            labels.append(tid if flags[k] else IGNORE)
        out.append({"input_ids": list(ids), "labels": labels})
    return out


def encode_grouped(batch: Sequence[Sequence[Sequence[Segment]]], tokenizer: Any) -> list[Encoded]:
    """Each row is a list of pieces; each piece is tokenized on its own as `encode_joined` does.

    For formats that tokenize several texts separately and mask part of one of them (axolotl's
    pygmalion turns, reflection's full prompt). One tokenizer call per batch.
    """
    flat = encode_joined([piece for row in batch for piece in row], tokenizer)
    out: list[Encoded] = []
    k = 0
    for row in batch:
        ids: list[int] = []
        labels: list[int] = []
        for enc in flat[k : k + len(row)]:
            ids += enc["input_ids"]
            labels += enc["labels"]
        k += len(row)
        out.append({"input_ids": ids, "labels": labels})
    return out
