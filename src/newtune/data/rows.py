"""Prepared rows: the cached Arrow rows of a dataset seen in a seeded order, for preprocess and train alike.

The cache holds the encoded, filtered, deduplicated rows in source order; shuffling and the val_set_size
split (`shuffle_split`) are redone from the seed each time (cheap index work). `Rows` reads them without
importing `datasets` (preprocess stays light); `Rows.to_dataset` gives training its memory-mapped view.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newtune.config.data import DataConfig, DatasetConfig
from newtune.data import cache
from newtune.data.filters import PartStats
from newtune.data.types import Encoded
from newtune.errors import DataError

EVAL_FILE = "eval.arrow"


@dataclass
class Summary:
    train: PartStats
    test: PartStats | None
    train_rows: int = 0
    eval_rows: int = 0
    seconds: float = 0.0
    cached: bool = False
    cache_path: str = ""


@dataclass
class Rows:
    """Cached Arrow rows seen in a seeded order, readable without importing `datasets` (fast preprocess)."""

    path: Path
    order: Any = None  # numpy index array, or None for file order

    def table(self) -> Any:
        import pyarrow as pa

        return pa.ipc.open_stream(pa.memory_map(str(self.path))).read_all()

    def __len__(self) -> int:
        return len(self.order) if self.order is not None else self.table().num_rows

    def iter_encoded(self, limit: int | None = None, batch_size: int = 1000) -> Iterator[Encoded]:
        table = self.table()
        n = len(self) if limit is None else min(limit, len(self))
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            part = table.slice(start, stop - start) if self.order is None else table.take(cache.int_array(self.order[start:stop].astype('int64')))
            yield from ({"input_ids": i, "labels": lab} for i, lab in
                        zip(part.column("input_ids").to_pylist(), part.column("labels").to_pylist(), strict=True))

    def lengths(self) -> Any:
        """Row lengths as a numpy array (read from the int32 buffers; ChunkedArray.to_numpy imports pandas)."""
        import numpy as np

        chunks = self.table().column("length").chunks
        lengths = np.concatenate([np.frombuffer(c.buffers()[1], np.int32, len(c), c.offset * 4) for c in chunks]
                                 or [np.zeros(0, np.int32)])
        return lengths if self.order is None else lengths[self.order]

    def to_dataset(self, task_ids: Any = None) -> Any:
        """A memory-mapped `datasets.Dataset` (input_ids, labels, length) in this order; `task_ids` (one per
        cached row, in file order) adds a task_id column."""
        ds = cache.open_rows(self.path)
        if task_ids is not None:
            ds = ds.add_column("task_id", task_ids.tolist())
        return ds if self.order is None else ds.select(self.order, keep_in_memory=True)


@dataclass
class PreparedRows:
    train: Rows
    eval: Rows | None
    summary: Summary


@dataclass
class PreparedData:
    train: Any  # datasets.Dataset: input_ids, labels, length
    eval: Any | None
    summary: Summary


def task_column(entries: list[DatasetConfig] | None, per_dataset: list[int]) -> Any:
    """Each cached row's task (multitask prompt tuning): its dataset's task_id, 0 where unset."""
    import numpy as np

    return np.repeat([ds.task_id or 0 for ds in entries or []], per_dataset).astype(np.int64)


def shuffle_split(rows: Rows, data: DataConfig, seed: int) -> tuple[Rows, Rows | None]:
    """Seeded shuffle (shuffle_merged_datasets) and val_set_size split: a fraction (<1) or a count."""
    import numpy as np

    n = len(rows)
    n_eval = int(round(data.val_set_size * n)) if data.val_set_size < 1 else int(data.val_set_size)
    if data.val_set_size and not 0 < n_eval < n:
        raise DataError("val_set_size", f"val_set_size {data.val_set_size} leaves {n - n_eval} of {n} rows to train on",
                        "use a smaller val_set_size or more data")
    if not data.shuffle_merged_datasets and not n_eval:
        return rows, None
    order = np.random.default_rng(seed).permutation(n)
    train_idx = order[n_eval:] if data.shuffle_merged_datasets else np.sort(order[n_eval:])
    return Rows(rows.path, train_idx), Rows(rows.path, np.sort(order[:n_eval])) if n_eval else None
