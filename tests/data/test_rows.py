"""Rows, the one prepared-rows type of preprocess and train: positions through the seeded order, across record batches."""

from __future__ import annotations

import numpy as np

from newtune.config.data import DataConfig
from newtune.data.cache import ArrowRows
from newtune.data.columns import from_encoded
from newtune.data.rows import Rows, shuffle_split

ENCODED = [{"input_ids": list(range(1, n + 2)), "labels": [-100] + list(range(2, n + 2))} for n in range(7)]


def cached_rows(tmp_path, batch_rows: int) -> Rows:
    sink = ArrowRows(tmp_path / "rows.arrow", batch_rows=batch_rows)
    for r in ENCODED:  # one row at a time: a record batch every `batch_rows` rows
        sink.add(from_encoded([r]))
    sink.close()
    return Rows(tmp_path / "rows.arrow")


def test_positions_follow_the_order_across_record_batches(tmp_path):
    rows = cached_rows(tmp_path, batch_rows=3)
    assert len(rows.table().to_batches()) == 3  # 3 + 3 + 1 rows: the gather crosses batch boundaries
    data = DataConfig(datasets=[], val_set_size=2, shuffle_merged_datasets=True)
    train, evalset = shuffle_split(rows, data, seed=5)
    order = np.random.default_rng(5).permutation(len(ENCODED))  # shuffle_split's own seeded order
    assert train.order.tolist() == order[2:].tolist() and evalset.order.tolist() == sorted(order[:2].tolist())
    assert list(train.iter_encoded()) == [ENCODED[i] for i in order[2:]]
    positions = [4, 0, 0, 2]  # any positions, repeats included
    got = train.fetch(positions, ("input_ids", "labels"))
    assert got == {k: [ENCODED[order[2 + p]][k] for p in positions] for k in ("input_ids", "labels")}
    assert train.lengths().tolist() == [len(ENCODED[i]["input_ids"]) for i in order[2:]]
    assert train[1] == {**ENCODED[order[3]], "length": len(ENCODED[order[3]]["input_ids"])}
    assert [r["input_ids"] for r in evalset] == [ENCODED[i]["input_ids"] for i in sorted(order[:2])]


def test_task_ids_follow_their_rows(tmp_path):
    rows = cached_rows(tmp_path, batch_rows=2).with_tasks(np.arange(10, 17)).reordered(np.array([6, 1, 3]))
    assert rows.column_names == ["input_ids", "labels", "length", "task_id"]
    assert rows.fetch([2, 0], ("input_ids", "task_id")) == {"input_ids": [ENCODED[3]["input_ids"], ENCODED[6]["input_ids"]],
                                                           "task_id": [13, 16]}


def test_rows_in_memory_read_like_cached_ones(tmp_path):
    cached = cached_rows(tmp_path, batch_rows=4)
    memory = Rows.of_columns({"input_ids": [r["input_ids"] for r in ENCODED], "labels": [r["labels"] for r in ENCODED],
                              "length": [len(r["input_ids"]) for r in ENCODED]})
    assert list(memory) == list(cached) and memory.lengths().tolist() == cached.lengths().tolist()
