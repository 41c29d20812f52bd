"""Which encoded rows are kept: the length policy, the minimum length, exact deduplication; and their stats.

Works on a whole batch of TokenColumns at once (numpy); the survivors go to the cache writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from newtune.config.data import DataConfig
from newtune.data.columns import TokenColumns
from newtune.data.types import IGNORE
from newtune.errors import DataError

MIN_LEN = 2  # rows shorter than this teach nothing (axolotl's min_sample_len default)
ZERO_SHOWN = 5  # rows named in the zero-trainable warning


@dataclass
class PartStats:
    """What happened to the rows of one part (train or test datasets)."""

    rows_in: int = 0
    rows_out: int = 0
    tokens: int = 0
    trainable: int = 0
    truncated: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    zero_trainable: int = 0
    zero_trainable_rows: list[str] = field(default_factory=list)
    per_dataset: list[int] = field(default_factory=list)  # rows kept from each dataset entry, in order

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count


def keep_rows(cols: TokenColumns, where: list[str], data: DataConfig, stats: PartStats,
              seen: set[bytes] | None) -> TokenColumns:
    """The rows of `cols` that survive, counted in `stats`; `where[cols.source[i]]` names row i."""
    import numpy as np

    drops: list[tuple[int, str, int]] = []  # (first row, reason, count): reasons recorded in row order
    limit = data.sequence_len
    too_long = cols.lengths() > limit
    if too_long.any():
        first = int(np.argmax(too_long))
        if data.excess_length_strategy == "raise":
            raise DataError(where[cols.source[first]],
                            f"row has {int(cols.lengths()[first])} tokens, more than sequence_len ({limit})",
                            "raise sequence_len, or set excess_length_strategy: drop or truncate")
        if data.excess_length_strategy == "drop":
            drops.append((int(cols.source[first]), f"longer than sequence_len ({limit})", int(too_long.sum())))
            cols = cols.select(np.flatnonzero(~too_long))
        else:
            stats.truncated += int(too_long.sum())
            cols = cols.truncate(limit)
    min_len = getattr(data, "min_sample_len", MIN_LEN)
    short = cols.lengths() < min_len
    if short.any():
        drops.append((int(cols.source[np.argmax(short)]), f"shorter than {min_len} tokens", int(short.sum())))
        cols = cols.select(np.flatnonzero(~short))
    if seen is not None:
        cols = _dedup(cols, seen, drops)
    for _, reason, count in sorted(drops, key=lambda d: d[0]):
        stats.drop(reason, count)
    trained = _trained_per_row(cols)
    zero = np.flatnonzero(trained == 0)
    stats.zero_trainable += len(zero)
    for i in zero[: max(ZERO_SHOWN - len(stats.zero_trainable_rows), 0)]:
        stats.zero_trainable_rows.append(where[cols.source[i]])
    stats.rows_out += len(cols)
    stats.tokens += int(cols.offsets[-1] - cols.offsets[0])
    stats.trainable += int(trained.sum())
    return cols


def _trained_per_row(cols: TokenColumns) -> Any:
    import numpy as np

    counts = np.zeros(len(cols.labels) + 1, np.int64)
    np.cumsum(cols.labels != IGNORE, out=counts[1:])
    return counts[cols.offsets[1:]] - counts[cols.offsets[:-1]]


def _dedup(cols: TokenColumns, seen: set[bytes], drops: list) -> TokenColumns:
    """Rows whose ids and labels were seen before (in this part or an earlier one) are dropped."""
    import hashlib

    import numpy as np

    bounds = cols.offsets.tolist()
    keep, first_dup, dups = [], -1, 0
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        h = hashlib.blake2b(cols.ids[a:b].tobytes(), digest_size=16)
        h.update(cols.labels[a:b].tobytes())
        digest = h.digest()
        if digest in seen:
            dups += 1
            first_dup = i if first_dup < 0 else first_dup
            continue
        seen.add(digest)
        keep.append(i)
    if not dups:
        return cols
    drops.append((int(cols.source[first_dup]), "exact duplicates", dups))
    return cols.select(np.asarray(keep, np.int64))
