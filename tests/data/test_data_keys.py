"""Data keys of axolotl configs: skip_prepare_dataset, min_sample_len, shuffle_before_merging_datasets,
data_seed, per-dataset weight."""

from __future__ import annotations

import json

from newtune.config.load import load_config
from newtune.data.pipeline import prepare, prepare_rows


def io_row(prompt: str, answer: str) -> dict:
    return {"segments": [{"text": prompt, "label": False}, {"text": answer, "label": True}]}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def config(tmp_path, datasets, **keys):
    return load_config(None, raw={"datasets": datasets, "dataset_prepared_path": str(tmp_path / "prep"), **keys}).data


def ids_of(dataset) -> list[list[int]]:
    return [r["input_ids"] for r in dataset]


def test_skip_prepare_dataset_tokenizes_each_run_and_caches_nothing(tmp_path, mistral_tok):
    path = write_jsonl(tmp_path / "d.jsonl", [io_row(f"Q{i}", f" A{i}") for i in range(6)])
    ds = [{"path": path, "type": "input_output"}]
    skipped = config(tmp_path, ds, skip_prepare_dataset=True)
    first = prepare_rows(skipped, mistral_tok, seed=0)
    again = prepare_rows(skipped, mistral_tok, seed=0)
    assert not first.summary.cached and not again.summary.cached
    assert not (tmp_path / "prep").exists()  # no cache read or written
    cached = prepare(config(tmp_path, ds), mistral_tok, seed=0)
    assert (tmp_path / "prep").exists()
    assert ids_of(prepare(skipped, mistral_tok, seed=0).train) == ids_of(cached.train)  # the same rows


def test_min_sample_len_drops_shorter_rows(tmp_path, mistral_tok):
    rows = [io_row("Q", " A"), io_row("Question one", " Answer one two three")]
    ds = [{"path": write_jsonl(tmp_path / "d.jsonl", rows), "type": "input_output"}]
    kept = prepare_rows(config(tmp_path, ds, shuffle_merged_datasets=False), mistral_tok, seed=0)
    assert kept.summary.train.rows_out == 2  # the default 2 keeps a 2-token row
    strict = prepare_rows(config(tmp_path, ds, shuffle_merged_datasets=False, min_sample_len=4), mistral_tok, seed=0)
    assert strict.summary.train.rows_out == 1 and strict.summary.train.dropped == {"shorter than 4 tokens": 1}
