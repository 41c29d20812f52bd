"""Encoding with tokenization on a second thread, over many small batches: same rows and errors as row by row."""

from __future__ import annotations

import json

import pytest

from newtune.data import sources
from newtune.data.pipeline import prepare_rows
from newtune.data.rowcodec import encode_row
from newtune.errors import DataError
from newtune.load import load_config


def alpaca_rows(n: int) -> list[dict]:
    return [{"instruction": f"Add {i} and {i + 1}.", "input": "numbers" if i % 3 else "",
             "output": f"The sum is {2 * i + 1}." if i % 5 else ""} for i in range(n)]


def prepare(tmp_path, tok, rows, **keys):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = load_config(None, raw={"datasets": [{"path": str(path), "type": "alpaca"}], "shuffle_merged_datasets": False,
                                  "dataset_prepared_path": str(tmp_path / "prep"), **keys}).data
    return prepare_rows(data, tok, seed=0)


@pytest.mark.parametrize("tok_name", ["smol_tok", "mistral_tok"])
def test_batches_in_order_equal_row_by_row(tmp_path, monkeypatch, request, tok_name):
    tok = request.getfixturevalue(tok_name)
    monkeypatch.setattr(sources, "BATCH", 7)
    rows = alpaca_rows(60)
    got = list(prepare(tmp_path, tok, rows).train.iter_encoded())
    assert got == [encode_row("alpaca", r, tok) for r in rows]


def test_error_in_a_later_batch_names_its_line(tmp_path, monkeypatch, smol_tok):
    monkeypatch.setattr(sources, "BATCH", 4)
    rows = [{"segments": [{"text": f"q{i}", "label": False}, {"text": f" a{i}", "label": True}]} for i in range(20)]
    rows[13]["segments"][1] = {"text": "no label"}
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = load_config(None, raw={"datasets": [{"path": str(path), "type": "input_output"}],
                                  "dataset_prepared_path": str(tmp_path / "prep")}).data
    with pytest.raises(DataError) as e:
        prepare_rows(data, smol_tok, seed=0)
    assert str(e.value).startswith("d.jsonl line 14 (input_output): segments[1]: no field 'label' (it has: text)")
