"""Prepared rows: the cached Arrow rows of a dataset seen in a seeded order, one type for preprocess and train.

The cache holds the encoded, filtered, deduplicated rows in source order; shuffling and the val_set_size
split (`shuffle_split`) are redone from the seed each time (cheap index work). `Rows` reads them with
pyarrow alone (no `datasets`, no torch): preprocess iterates them, train fetches micro-batches by position,
and both read the row lengths once from the `length` column.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from newtune.config.data import DataConfig, DatasetConfig
from newtune.data.filters import PartStats
from newtune.data.types import Encoded
from newtune.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

EVAL_FILE = "eval.arrow"
Columns = dict[str, list]  # column name → one value per fetched row


@dataclass
class Summary:
    train: PartStats
    test: PartStats | None
    train_rows: int = 0
    eval_rows: int = 0
    seconds: float = 0.0
    cached: bool = False
    cache_path: str = ""


@dataclass(eq=False)
class Rows:
    """Arrow rows (a memory-mapped cache file, or a table in memory) seen in a seeded order.

    Position `i` is file row `order[i]` (file order when `order` is None). `tasks` (multitask prompt tuning)
    holds each file row's task_id, served as a `task_id` column. Indexing follows `datasets.Dataset`:
    `rows[i]` is one row's dict, `rows[[i, j]]` a dict of columns."""

    path: Path | None
    order: np.ndarray | None = None
    tasks: np.ndarray | None = None
    _table: pa.Table | None = field(default=None, repr=False)  # read once, shared by the reordered views
    _batches: tuple[list[pa.RecordBatch], np.ndarray] | None = field(default=None, repr=False)  # with start rows
    _lengths: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def of_columns(cls, columns: Columns) -> Rows:
        """Rows held in memory (the pretraining stream's packed rows): input_ids, labels, length."""
        import pyarrow as pa

        ints = pa.list_(pa.int32())
        types = {"input_ids": ints, "labels": ints, "length": pa.int32()}
        return cls(None, _table=pa.table({k: pa.array(v, types.get(k)) for k, v in columns.items()}))

    def table(self) -> pa.Table:
        if self._table is None:
            import pyarrow as pa

            self._table = pa.ipc.open_stream(pa.memory_map(str(self.path))).read_all()
        return self._table

    def subset(self, index: np.ndarray) -> Rows:
        """The rows at positions `index` of this order."""
        return self.reordered(index if self.order is None else self.order[index])

    def reordered(self, order: np.ndarray | None) -> Rows:
        """The same file rows (and the table already read) in another order."""
        self.record_batches()
        return replace(self, order=order, _lengths=None)

    def with_tasks(self, tasks: np.ndarray) -> Rows:
        return replace(self, tasks=tasks)

    def __len__(self) -> int:
        return len(self.order) if self.order is not None else self.table().num_rows

    @property
    def column_names(self) -> list[str]:
        return self.table().column_names + (["task_id"] if self.tasks is not None else [])

    def lengths(self) -> np.ndarray:
        """Row lengths (int64) in this order, read once from the int32 `length` buffers (ChunkedArray.to_numpy
        imports pandas)."""
        if self._lengths is None:
            import numpy as np

            chunks = self.table().column("length").chunks
            lengths = np.concatenate([np.frombuffer(c.buffers()[1], np.int32, len(c), c.offset * 4) for c in chunks]
                                     or [np.zeros(0, np.int32)]).astype(np.int64)
            self._lengths = lengths if self.order is None else lengths[self.order]
        return self._lengths

    def fetch(self, positions: Sequence[int], columns: Sequence[str] | None = None) -> Columns:
        """The rows at `positions` (in this order), column by column: one gather over the record batches.

        Each row is sliced from its own batch (binary search on the batch offsets): `Table.take` would
        concatenate every chunk of the table first, which costs the whole file per micro-batch."""
        import numpy as np
        import pyarrow as pa

        table = self.table()
        wanted = self.column_names if columns is None else columns
        names = [c for c in wanted if c != "task_id"]
        idx = np.asarray(positions, dtype=np.int64)
        rows = idx if self.order is None else self.order[idx]
        batches, starts = self.record_batches()
        which = np.searchsorted(starts, rows, side="right") - 1
        parts = [batches[b].slice(r - starts[b], 1) for b, r in zip(which.tolist(), rows.tolist(), strict=True)]
        got = pa.Table.from_batches(parts, schema=table.schema) if parts else table.slice(0, 0)
        out = {c: got.column(c).to_pylist() for c in names}
        if self.tasks is not None and "task_id" in wanted:
            out["task_id"] = self.tasks[rows].tolist()
        return out

    def record_batches(self) -> tuple[list[pa.RecordBatch], np.ndarray]:
        """The table's record batches and the file row each starts at."""
        if self._batches is None:
            import numpy as np

            batches = self.table().to_batches()
            self._batches = batches, np.cumsum([0] + [b.num_rows for b in batches])
        return self._batches

    def __getitem__(self, key: int | Sequence[int]) -> dict:
        if isinstance(key, int):
            return {c: v[0] for c, v in self.fetch([key]).items()}
        return self.fetch(key)

    def __iter__(self) -> Iterator[dict]:
        for start in range(0, len(self), 1000):
            got = self.fetch(range(start, min(start + 1000, len(self))))
            yield from (dict(zip(got, values, strict=True)) for values in zip(*got.values(), strict=True))

    def iter_encoded(self, limit: int | None = None, batch_size: int = 1000) -> Iterator[Encoded]:
        n = len(self) if limit is None else min(limit, len(self))
        for start in range(0, n, batch_size):
            got = self.fetch(range(start, min(start + batch_size, n)), ("input_ids", "labels"))
            yield from ({"input_ids": i, "labels": lab} for i, lab in zip(got["input_ids"], got["labels"], strict=True))


@dataclass
class PreparedRows:
    """What `prepare` gives preprocess and train alike: the training rows, the eval rows, and the summary."""

    train: Rows
    eval: Rows | None
    summary: Summary


def task_column(entries: list[DatasetConfig] | None, per_dataset: list[int]) -> np.ndarray:
    """Each cached row's task (multitask prompt tuning): its dataset's task_id, 0 where unset."""
    import numpy as np

    return np.repeat([entry.task_id or 0 for entry in entries or []], per_dataset).astype(np.int64)


def shuffle_split(rows: Rows, data: DataConfig, seed: int, per_dataset: list[int] | None = None) -> tuple[Rows, Rows | None]:
    """Seeded shuffle (shuffle_merged_datasets) and val_set_size split: a fraction (<1) or a count.

    shuffle_before_merging_datasets (several datasets; `per_dataset`: each one's row count, in order): each
    dataset's rows are first shuffled alone, as axolotl shuffles each with `seed` before concatenating."""
    import numpy as np

    if data.shuffle_before_merging_datasets and per_dataset and len(per_dataset) > 1:
        rows = rows.subset(merged_after_shuffling(per_dataset, seed))
    n = len(rows)
    n_eval = int(round(data.val_set_size * n)) if data.val_set_size < 1 else int(data.val_set_size)
    if data.val_set_size and not 0 < n_eval < n:
        raise DataError("val_set_size", f"val_set_size {data.val_set_size} leaves {n - n_eval} of {n} rows to train on",
                        "use a smaller val_set_size or more data")
    if not data.shuffle_merged_datasets and not n_eval:
        return rows, None
    order = np.random.default_rng(seed).permutation(n)
    train_idx = order[n_eval:] if data.shuffle_merged_datasets else np.sort(order[n_eval:])
    return rows.subset(train_idx), rows.subset(np.sort(order[:n_eval])) if n_eval else None


def merged_after_shuffling(per_dataset: list[int], seed: int) -> np.ndarray:
    """Row indices of the merged datasets, each dataset's rows in `datasets.Dataset.shuffle(seed)` order
    (`np.random.default_rng(seed).permutation(n)`)."""
    import numpy as np

    starts = np.cumsum([0, *per_dataset[:-1]])
    return np.concatenate([start + np.random.default_rng(seed).permutation(n) for start, n in zip(starts, per_dataset, strict=True)])
