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


def token_rows(path, first: int, n: int) -> str:
    """n pre-tokenized rows; row k's ids start at first + k, so a prepared row tells which it was."""
    return write_jsonl(path, [{"input_ids": [first + k, 28705, 28705]} for k in range(n)])


def firsts(rows) -> list[int]:
    return [r["input_ids"][0] for r in rows.iter_encoded()]


def test_weight_keeps_axolotls_seeded_share_of_the_rows(tmp_path, mistral_tok):
    from datasets import Dataset

    ds = [{"path": token_rows(tmp_path / "d.jsonl", 100, 10), "weight": 0.35}]
    kept = firsts(prepare_rows(config(tmp_path, ds, shuffle_merged_datasets=False), mistral_tok, seed=3).train)
    # axolotl 0.21.0 (utils/data/sft.py): dataset.shuffle(seed=cfg.seed).select(range(max(1, int(n * weight))))
    expected = Dataset.from_dict({"k": list(range(10))}).shuffle(seed=3).select(range(3))["k"]
    assert kept == [100 + k for k in expected]
    other = firsts(prepare_rows(config(tmp_path, ds, shuffle_merged_datasets=False), mistral_tok, seed=4).train)
    assert len(other) == 3 and other != kept  # the seed is part of the cache key: another seed, other rows


def test_shuffle_before_merging_datasets_shuffles_each_dataset_alone(tmp_path, mistral_tok):
    from datasets import Dataset, concatenate_datasets

    ds = [{"path": token_rows(tmp_path / "a.jsonl", 100, 6)}, {"path": token_rows(tmp_path / "b.jsonl", 200, 5)}]
    plain = firsts(prepare_rows(config(tmp_path, ds, shuffle_merged_datasets=False), mistral_tok, seed=5).train)
    assert plain == [*range(100, 106), *range(200, 205)]
    rows = prepare_rows(config(tmp_path, ds, shuffle_merged_datasets=False, shuffle_before_merging_datasets=True),
                        mistral_tok, seed=5).train
    # axolotl 0.21.0 (utils/data/shared.py merge_datasets): each dataset .shuffle(seed=cfg.seed), then concatenated
    parts = [Dataset.from_dict({"k": list(range(first, first + n))}).shuffle(seed=5) for first, n in ((100, 6), (200, 5))]
    assert firsts(rows) == concatenate_datasets(parts)["k"]


def test_hf_use_auth_token_is_passed_to_the_hub(tmp_path, monkeypatch):
    import datasets

    from newtune.data.formats.pretraining import _hub_stream
    from newtune.data.sources import iter_batches

    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: calls.append(kw) or [])
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    for token in (True, False, None):
        data = config(tmp_path, [{"path": "some-org/private-rows", "type": "alpaca"}], hf_use_auth_token=token)
        list(iter_batches(data.datasets[0]))
        pre = load_config(None, raw={"pretraining_dataset": [{"path": "some-org/corpus"}], "max_steps": 1,
                                     "hf_use_auth_token": token}).data
        list(_hub_stream(pre.pretraining_dataset[0]))
    # as axolotl passes token=cfg.hf_use_auth_token; unset: the hub's own default (the saved token, if any)
    assert [kw.get("token", "unset") for kw in calls] == [True, True, False, False, "unset", "unset"]
