"""Sources: every local file kind, data_files, shards, and the errors that name file and line."""

from __future__ import annotations

import json

import pytest

from newtune.config.data import DatasetConfig
from newtune.data.sources import iter_batches, shard_range
from newtune.errors import DataError

ROWS = [{"text": f"row {i}", "n": i} for i in range(5)]


def read(**kw) -> tuple[list[dict], list[str]]:
    rows, where = [], []
    for b in iter_batches(DatasetConfig(**kw), batch_size=2):
        rows += b.rows
        where += b.where
    return rows, where


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_rows_and_lines(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1]) + "\n")
    rows, where = read(path=str(p))
    assert rows == ROWS[:2]
    assert where == ["d.jsonl line 1", "d.jsonl line 3"]


def test_json_array_and_jsonl_named_json(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(ROWS[:3], indent=2))
    assert read(path=str(tmp_path / "a.json")) == (ROWS[:3], ["a.json row 0", "a.json row 1", "a.json row 2"])
    write_jsonl(tmp_path / "b.json", ROWS[:2])
    assert read(path=str(tmp_path / "b.json"))[0] == ROWS[:2]


def test_rows_keep_their_own_keys(tmp_path):
    """A key a later row lacks stays absent (not null), so formats can tell a missing field from a null one."""
    p = write_jsonl(tmp_path / "d.jsonl", [{"a": 1, "b": 2}, {"a": 3}, {"a": 4, "b": None}])
    assert read(path=str(p))[0] == [{"a": 1, "b": 2}, {"a": 3}, {"a": 4, "b": None}]


def test_parquet_csv_arrow(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list(ROWS)
    ds.to_parquet(str(tmp_path / "d.parquet"))
    ds.to_csv(str(tmp_path / "d.csv"), index=False)
    ds.save_to_disk(str(tmp_path / "saved"))
    arrow = next((tmp_path / "saved").glob("*.arrow"))
    for path in (tmp_path / "d.parquet", tmp_path / "d.csv", arrow, tmp_path / "saved"):
        rows, where = read(path=str(path))
        assert rows == ROWS, path
        assert where[4].endswith("row 4")


def test_directory_with_data_files_and_ds_type(tmp_path):
    write_jsonl(tmp_path / "one.jsonl", ROWS[:2])
    write_jsonl(tmp_path / "two.jsonl", ROWS[2:])
    write_jsonl(tmp_path / "skip.txt.data", ROWS[:1])
    assert read(path=str(tmp_path))[0] == ROWS
    assert read(path=str(tmp_path), data_files=["two.jsonl"])[0] == ROWS[2:]
    assert read(path=str(tmp_path / "skip.txt.data"), ds_type="jsonl")[0] == ROWS[:1]
    with pytest.raises(DataError, match="data_files entry 'nope.jsonl' matches no file"):
        read(path=str(tmp_path), data_files="nope.jsonl")


def test_shards_are_contiguous_like_datasets(tmp_path):
    import datasets

    p = write_jsonl(tmp_path / "d.jsonl", ROWS)
    ds = datasets.Dataset.from_list(ROWS)
    for idx in range(3):
        expected = ds.shard(num_shards=3, index=idx, contiguous=True).to_list()
        assert read(path=str(p), shards=3, shards_idx=idx)[0] == expected
    assert shard_range(5, 3, 0) == (0, 2) and shard_range(5, 3, 2) == (4, 5)


def test_malformed_json_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"text": "ok"}\n{"text": "oops",}\n')
    with pytest.raises(DataError) as e:
        read(path=str(p))
    assert str(e.value) == "bad.jsonl line 2: invalid JSON: Expecting property name enclosed in double quotes (column 17)"


def test_non_utf8_bytes_name_the_line(tmp_path):
    p = tmp_path / "latin.jsonl"
    p.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"latin.jsonl line 2: not UTF-8 text \(invalid continuation byte at byte 13"):
        read(path=str(p))


def test_row_that_is_not_an_object(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"text": "ok"}\n["a", "b"]\n')
    with pytest.raises(DataError, match="d.jsonl line 2: each row must be a JSON object, not list"):
        read(path=str(p))


def test_hub_id_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError) as e:
        read(path="someone/some-dataset")
    msg = str(e.value)
    assert msg.startswith("someone/some-dataset: not a local path, and the dataset hub is unreachable")
    assert "set path: to the local .jsonl/.parquet file" in msg
