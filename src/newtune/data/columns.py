"""Encoded rows as flat columns: all rows' token ids and labels in two int32 arrays plus row offsets.

What the bulk encoders produce and the cache writes: no per-row Python lists between the tokenizer
and Arrow. numpy is imported inside functions (the data package stays light to import).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from newtune.data.types import IGNORE, Encoded


@dataclass
class TokenColumns:
    """Row i is ids[offsets[i]:offsets[i+1]] (labels alike); `source[i]`: the input row it came from."""

    ids: Any  # numpy int32
    labels: Any  # numpy int32
    offsets: Any  # numpy int64, len(rows) + 1
    source: Any  # numpy int64: index of the input row (rows may split or be dropped)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> Any:
        import numpy as np

        return np.diff(self.offsets)

    def to_encoded(self) -> list[Encoded]:
        ids, labels, bounds = self.ids.tolist(), self.labels.tolist(), self.offsets.tolist()
        return [{"input_ids": ids[a:b], "labels": labels[a:b]} for a, b in zip(bounds, bounds[1:], strict=False)]

    def select(self, rows: Any) -> TokenColumns:
        """The rows at sorted indices `rows` (a numpy int array)."""
        import numpy as np

        lengths = self.lengths()[rows]
        starts = self.offsets[:-1][rows]
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        take = ranges(starts, lengths, offsets)
        return TokenColumns(self.ids[take], self.labels[take], offsets, self.source[rows])

    def truncate(self, limit: int) -> TokenColumns:
        """Every row cut to its first `limit` tokens."""
        import numpy as np

        lengths = np.minimum(self.lengths(), limit)
        offsets = np.zeros(len(self) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        take = ranges(self.offsets[:-1], lengths, offsets)
        return TokenColumns(self.ids[take], self.labels[take], offsets, self.source)

    def chunk(self, size: int) -> TokenColumns:
        """Rows longer than `size` become consecutive rows of at most `size` tokens (same tokens, more offsets)."""
        import numpy as np

        lengths = self.lengths()
        if not (lengths > size).any():
            return self
        pieces = np.maximum(-(-lengths // size), 1)  # an empty row stays one (empty) row
        source = np.repeat(self.source, pieces)
        first = np.repeat(self.offsets[:-1], pieces)
        k = np.arange(len(source)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        starts = first + k * size
        offsets = np.append(starts, self.offsets[-1])
        return TokenColumns(self.ids, self.labels, offsets, source)


def ranges(starts: Any, lengths: Any, offsets: Any) -> Any:
    """Concatenated index ranges [starts[i], starts[i] + lengths[i]); `offsets` is the cumsum of lengths."""
    import numpy as np

    total = int(offsets[-1])
    return np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1] - starts, lengths)


def from_pieces(piece_ids: Sequence[Sequence[int]], piece_train: Sequence[bool], row_pieces: Sequence[int]) -> TokenColumns:
    """Rows made of consecutive pieces: each piece's ids, whether it is trained, and how many pieces each row has."""
    import numpy as np

    lengths = np.fromiter(map(len, piece_ids), np.int64, len(piece_ids))
    piece_bounds = np.zeros(len(piece_ids) + 1, np.int64)
    np.cumsum(lengths, out=piece_bounds[1:])
    ids = np.fromiter(chain.from_iterable(piece_ids), np.int32, int(piece_bounds[-1]))
    trained = np.repeat(np.asarray(piece_train, bool), lengths)
    labels = np.where(trained, ids, np.int32(IGNORE)).astype(np.int32, copy=False)
    row_bounds = np.zeros(len(row_pieces) + 1, np.int64)
    np.cumsum(np.asarray(row_pieces, np.int64), out=row_bounds[1:])
    return TokenColumns(ids, labels, piece_bounds[row_bounds], np.arange(len(row_pieces), dtype=np.int64))


def from_encoded(rows: Sequence[Encoded]) -> TokenColumns:
    """Columns of per-row Encoded dicts (formats that build their own ids and labels)."""
    import numpy as np

    for r in rows:
        if len(r["labels"]) != len(r["input_ids"]):
            raise ValueError(f"labels ({len(r['labels'])}) and input_ids ({len(r['input_ids'])}) differ in length")
    lengths = np.fromiter((len(r["input_ids"]) for r in rows), np.int64, len(rows))
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    ids = np.fromiter(chain.from_iterable(r["input_ids"] for r in rows), np.int32, total)
    labels = np.fromiter(chain.from_iterable(r["labels"] for r in rows), np.int32, total)
    return TokenColumns(ids, labels, offsets, np.arange(len(rows), dtype=np.int64))


def concat(parts: Sequence[TokenColumns]) -> TokenColumns:
    """Rows of several column sets, in order (sources kept as they are)."""
    import numpy as np

    if len(parts) == 1:
        return parts[0]
    shifts = np.cumsum([0] + [int(p.offsets[-1] - p.offsets[0]) for p in parts[:-1]])
    offsets = np.concatenate([parts[0].offsets[:1]] + [p.offsets[1:] - p.offsets[0] + s for p, s in zip(parts, shifts, strict=True)])
    return TokenColumns(np.concatenate([p.ids[p.offsets[0]:p.offsets[-1]] for p in parts]),
                        np.concatenate([p.labels[p.offsets[0]:p.offsets[-1]] for p in parts]),
                        offsets, np.concatenate([p.source for p in parts]))
