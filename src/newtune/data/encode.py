"""Segments → token ids and labels. The only code that writes labels.

Pure functions: no config, globals or I/O. `add_special_tokens=False` everywhere: templates and
styles write BOS/EOS into the text themselves.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any

from newtune.data.columns import TokenColumns, from_pieces
from newtune.data.types import IGNORE, Encoded, Segment, Tokenizer


def encode_pieces(batch: Sequence[Sequence[Segment]], tokenizer: Tokenizer) -> list[Encoded]:
    """Tokenize each segment on its own (as axolotl does for styles and input_output), batched."""
    return encode_pieces_columns(batch, tokenizer).to_encoded()


def encode_pieces_columns(batch: Sequence[Sequence[Segment]], tokenizer: Tokenizer) -> TokenColumns:
    """`encode_pieces` as flat columns: one call into the Rust tokenizer per batch, no per-row lists.

    A segment given as parts is tokenized part by part where that gives its ids (`cuts_are_splits`), so the
    fixed text between a row's fields is one repeated text, tokenized once per batch."""
    if not any(s.parts for segs in batch[:1] for s in segs) or not splits_by_gpt2_regex(tokenizer):  # formats cut every row or none
        texts = [s.text for segs in batch for s in segs]
        return from_pieces(piece_ids(texts, tokenizer), [s.train for segs in batch for s in segs], [len(s) for s in batch])
    texts, train, counts = [], [], []
    for segs in batch:
        n = 0
        for s in segs:
            if len(s.parts) > 1 and cuts_are_splits(s.parts):
                texts += s.parts
                train += [s.train] * len(s.parts)
                n += len(s.parts)
            else:
                texts.append(s.text)
                train.append(s.train)
                n += 1
        counts.append(n)
    return from_pieces(piece_ids(texts, tokenizer), train, counts)


def splits_by_gpt2_regex(tokenizer: Tokenizer) -> bool:
    """Whether `tokenizer` is a plain Rust byte-level BPE whose only text splitting is GPT-2's pre-tokenizer regex
    (no normalizer, no prefix space) and whose added tokens hold no whitespace and strip nothing around them:
    then tokenizing texts cut where `cuts_are_splits` allows gives the ids of the whole text. SentencePiece
    tokenizers (Metaspace, a "▁" put before the text) and custom split regexes (Llama 3, Qwen) are not."""
    backend = plain_backend(tokenizer)
    if backend is None or backend.normalizer is not None:
        return False
    from tokenizers import models, pre_tokenizers

    pre = backend.pre_tokenizer
    if not isinstance(pre, pre_tokenizers.ByteLevel) or pre.add_prefix_space or not pre.use_regex:
        return False
    if not isinstance(backend.model, models.BPE) or backend.model.dropout:
        return False
    return not any(t.lstrip or t.rstrip or t.single_word or any(c.isspace() for c in t.content)
                   for t in backend.get_added_tokens_decoder().values())


def cuts_are_splits(parts: Sequence[str]) -> bool:
    """Whether GPT-2's pre-tokenizer regex splits the joined text at every cut, and each part alone as it splits the
    joined text there. Its pieces are contractions, letters, digits or other symbols with an optional leading space,
    and whitespace runs, of which one followed by non-space gives its last character up to the next piece. So a cut
    from non-space to whitespace is a split, and so is a cut after a lone newline (tab, CR) that follows non-space,
    before non-space (that newline is a piece of its own, joined or alone). Any other cut is not taken: a space
    before a word (" ?" takes it), whitespace on both sides (the run regroups), non-space on both sides (words and
    digits run on)."""
    for left, right in zip(parts, parts[1:], strict=False):
        if not left or not right:
            return False
        a, b = left[-1], right[0]
        if a.isspace():
            if a not in "\n\t\r" or len(left) < 2 or left[-2].isspace() or b.isspace():
                return False
        elif b not in " \t\n\r":
            return False
    return True


def piece_ids(texts: list[str], tokenizer: Tokenizer) -> list[list[int]]:
    """Token ids of each text tokenized alone; a text repeated in the batch (EOS, a fixed prompt) is tokenized once."""
    unique = list(dict.fromkeys(texts))
    backend = plain_backend(tokenizer)
    if backend is not None:
        encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
        found = [e.ids for e in encode(unique, add_special_tokens=False)] if unique else []
    else:
        found = tokenizer(unique, add_special_tokens=False)["input_ids"] if unique else []
    if len(unique) == len(texts):
        return found
    by_text = dict(zip(unique, found, strict=True))
    return [by_text[t] for t in texts]


def encode_joined(batch: Sequence[Sequence[Segment]], tokenizer: Tokenizer, *, overlap: bool = False) -> list[Encoded]:
    """Tokenize each row's concatenated text once and label tokens by character offset.

    By default a token is trained when the character it starts at lies in a trained segment. With
    `overlap=True` (chat templates, as axolotl locates turns) a token is trained when its characters
    overlap a trained segment at all, so a token straddling a boundary into trained text is trained.
    """
    texts = ["".join(s.text for s in segs) for segs in batch]
    if not texts:
        return []
    encs = _rust_encodings(texts, tokenizer)
    if encs is not None and overlap:  # no per-token offset lists: look up the ends of each trained run
        out: list[Encoded] = []
        for segs, e in zip(batch, encs, strict=True):
            ids = e.ids
            labels = _label_runs(segs, ids, e)
            out.append({"input_ids": ids, "labels": labels if labels is not None
                        else _label_overlapping(segs, ids, e.offsets)})
        return out
    all_ids, all_offsets = ids_and_offsets(texts, tokenizer, encs)
    label = _label_overlapping if overlap else _label_by_start
    return [
        {"input_ids": list(ids), "labels": label(segs, ids, offsets)}
        for segs, ids, offsets in zip(batch, all_ids, all_offsets, strict=True)
    ]


def _rust_encodings(texts: list[str], tokenizer: Tokenizer) -> list[Any] | None:
    """The Rust tokenizer's Encodings when calling it directly is exactly what `tokenizer(...)` does; None
    otherwise. Converting every Encoding to Python dicts, as `tokenizer(...)` does, costs about as much as
    tokenizing."""
    backend = plain_backend(tokenizer)
    return None if backend is None else backend.encode_batch(texts, add_special_tokens=False)


def plain_backend(tokenizer: Tokenizer) -> Any:
    """The Rust tokenizer behind `tokenizer` when it has no truncation, padding or special-token splitting
    configured (so calling it directly gives the same ids); else None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if (backend is None or backend.truncation is not None or backend.padding is not None
            or backend.encode_special_tokens != bool(getattr(tokenizer, "split_special_tokens", False))):
        return None
    return backend


def ids_and_offsets(texts: list[str], tokenizer: Tokenizer, encs: list[Any] | None = None,
                    ) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """Token ids and character offsets of each text, without special tokens, in one call into Rust."""
    encs = encs if encs is not None else _rust_encodings(texts, tokenizer)
    if encs is not None:
        return [e.ids for e in encs], [e.offsets for e in encs]
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    return enc["input_ids"], enc["offset_mapping"]


def _trained_runs(segs: Sequence[Segment]) -> list[tuple[int, int]]:
    """Character ranges [a, b) of consecutive trained, non-empty segments."""
    runs: list[tuple[int, int]] = []
    pos, run = 0, None
    for s in segs:
        if s.text and s.train and run is None:
            run = pos
        elif s.text and not s.train and run is not None:
            runs.append((run, pos))
            run = None
        pos += len(s.text)
    if run is not None:
        runs.append((run, pos))
    return runs


def _label_by_start(segs: Sequence[Segment], ids: Sequence[int], offsets: Sequence[tuple[int, int]]) -> list[int]:
    bounds, flags, pos = [], [], 0
    for s in segs:
        pos += len(s.text)
        bounds.append(pos)
        flags.append(s.train)
    labels: list[int] = []
    k = 0
    for tid, (start, _end) in zip(ids, offsets, strict=True):
        while k < len(bounds) - 1 and start >= bounds[k]:
            k += 1
        labels.append(tid if flags[k] else IGNORE)
    return labels


def _label_overlapping(segs: Sequence[Segment], ids: Sequence[int], offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Per trained run [a, b): tokens from the first ending after a to the last starting before b."""
    labels = [IGNORE] * len(ids)
    starts = [o[0] for o in offsets]
    ends = [o[1] for o in offsets]
    for a, b in _trained_runs(segs):
        i, j = bisect_right(ends, a), bisect_left(starts, b)
        labels[i:j] = ids[i:j]
    return labels


def _label_runs(segs: Sequence[Segment], ids: list[int], enc: Any) -> list[int] | None:
    """`_label_overlapping` through a Rust Encoding's char → token lookups; None if a run end is not in a token."""
    labels = [IGNORE] * len(ids)
    for a, b in _trained_runs(segs):
        i, t = enc.char_to_token(a), enc.char_to_token(b - 1)  # the first token holding each character
        if i is None or t is None:
            return None
        while t + 1 < len(ids) and enc.token_to_chars(t + 1)[0] < b:  # later tokens sharing character b-1
            t += 1
        labels[i : t + 1] = ids[i : t + 1]
    return labels


def encode_grouped(batch: Sequence[Sequence[Sequence[Segment]]], tokenizer: Tokenizer) -> list[Encoded]:
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
