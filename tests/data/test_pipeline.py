"""prepare(): merge, length policy, dedup, zero-trainable warning, seeded split, row errors; template-free formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newtune.data.formats.pretraining import pack_stream
from newtune.data.inspect import show
from newtune.data.pipeline import prepare, prepare_rows
from newtune.data.rowcodec import encode_row
from newtune.errors import DataError
from newtune.load import load_config


def io_row(prompt: str, answer: str) -> dict:
    return {"segments": [{"text": prompt, "label": False}, {"text": answer, "label": True}]}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def config(tmp_path, datasets, **keys):
    return load_config(None, raw={"datasets": datasets, "dataset_prepared_path": str(tmp_path / "prep"), **keys}).data


def rows_of(dataset) -> list[dict]:
    return [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in dataset]


def test_prepare_returns_datasets_with_ids_labels_length(tmp_path, mistral_tok):
    path = write_jsonl(tmp_path / "d.jsonl", [io_row("Q", " A")])
    data = config(tmp_path, [{"path": path, "type": "input_output"}], shuffle_merged_datasets=False)
    p = prepare(data, mistral_tok, seed=0)
    assert p.eval is None
    assert p.train.column_names == ["input_ids", "labels", "length"]
    assert p.train[0] == {"input_ids": [1186, 330], "labels": [-100, 330], "length": 2}
    assert p.summary.train.rows_in == 1 and p.summary.train.tokens == 2 and p.summary.train.trainable == 1


def test_merge_in_order_and_length_policy(tmp_path, mistral_tok):
    a = write_jsonl(tmp_path / "a.jsonl", [io_row("one", " two"), io_row("x", "")])  # 2nd row: 1 token
    b = write_jsonl(tmp_path / "b.jsonl", [io_row("three four five six seven eight nine ten", " eleven")])
    ds = [{"path": a, "type": "input_output"}, {"path": b, "type": "input_output"}]
    kept = prepare(config(tmp_path, ds, sequence_len=8, shuffle_merged_datasets=False), mistral_tok, seed=0)
    assert [show(r, mistral_tok) for r in rows_of(kept.train)] == ["[▁one] ▁two"]
    assert kept.summary.train.dropped == {"shorter than 2 tokens": 1, "longer than sequence_len (8)": 1}
    cut = prepare(config(tmp_path, ds, sequence_len=8, shuffle_merged_datasets=False, excess_length_strategy="truncate"),
                  mistral_tok, seed=0)
    assert [show(r, mistral_tok) for r in rows_of(cut.train)] == ["[▁one] ▁two", "[▁three ▁four ▁five ▁six ▁seven ▁eight ▁nine ▁ten]"]
    assert cut.summary.train.truncated == 1 and cut.summary.train.zero_trainable == 1
    assert cut.summary.train.zero_trainable_rows == ["b.jsonl line 1"]
    with pytest.raises(DataError, match=r"b.jsonl line 1: row has 9 tokens, more than sequence_len \(8\)"):
        prepare_rows(config(tmp_path, ds, sequence_len=8, excess_length_strategy="raise"), mistral_tok, seed=0)


def test_exact_deduplication(tmp_path, mistral_tok):
    path = write_jsonl(tmp_path / "d.jsonl", [io_row("a", " b"), io_row("a", " b"), io_row("a b", "")])
    p = prepare(config(tmp_path, [{"path": path, "type": "input_output"}], dataset_exact_deduplication=True,
                       shuffle_merged_datasets=False), mistral_tok, seed=0)
    assert [show(r, mistral_tok) for r in rows_of(p.train)] == ["[▁a] ▁b", "[▁a ▁b]"]  # same ids, other labels: kept
    assert p.summary.train.dropped == {"exact duplicates": 1}


def test_seeded_shuffle_and_val_split(tmp_path, mistral_tok):
    path = write_jsonl(tmp_path / "d.jsonl", [io_row(f"q{i}", f" a{i}") for i in range(10)])
    ds = [{"path": path, "type": "input_output"}]
    p1 = prepare(config(tmp_path, ds, val_set_size=0.2), mistral_tok, seed=3)
    p2 = prepare(config(tmp_path, ds, val_set_size=0.2), mistral_tok, seed=3)
    p3 = prepare(config(tmp_path, ds, val_set_size=2), mistral_tok, seed=4)
    assert len(p1.train) == 8 and len(p1.eval) == 2 and len(p3.eval) == 2
    assert rows_of(p1.train) == rows_of(p2.train) and rows_of(p1.eval) == rows_of(p2.eval)
    assert rows_of(p1.train) != rows_of(p3.train)
    everything = sorted(map(str, rows_of(p1.train) + rows_of(p1.eval)))
    assert everything == sorted(map(str, rows_of(prepare(config(tmp_path, ds), mistral_tok, seed=0).train)))
    assert p1.summary.cached is False and p2.summary.cached is True  # the split is redone on cached rows
    with pytest.raises(DataError, match="val_set_size 10.0 leaves 0 of 10 rows"):
        prepare(config(tmp_path, ds, val_set_size=10), mistral_tok, seed=0)


def test_test_datasets_become_the_eval_set(tmp_path, mistral_tok):
    train = write_jsonl(tmp_path / "t.jsonl", [io_row("q", " a")])
    test = write_jsonl(tmp_path / "e.jsonl", [io_row("x", " y"), io_row("z", " w")])
    p = prepare(config(tmp_path, [{"path": train, "type": "input_output"}],
                       test_datasets=[{"path": test, "type": "input_output"}]), mistral_tok, seed=0)
    assert [show(r, mistral_tok) for r in rows_of(p.eval)] == ["[▁x] ▁y", "[▁z] ▁w"]
    assert p.summary.test.rows_in == 2


def test_missing_field_names_row_and_fields(tmp_path, mistral_tok):
    path = write_jsonl(tmp_path / "d.jsonl", [io_row("a", " b"), {"text": "hi", "id": 3}])
    with pytest.raises(DataError) as e:
        prepare(config(tmp_path, [{"path": path, "type": "input_output"}]), mistral_tok, seed=0)
    assert str(e.value).startswith("d.jsonl line 2 (input_output): missing field 'segments' (row has: text, id)")
    assert not [p for p in (tmp_path / "prep").iterdir() if not p.name.endswith(".lock")]  # no partial cache


def test_wrong_type_in_a_row(tmp_path, mistral_tok):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": 5}])
    with pytest.raises(DataError, match=r"d.jsonl line 1 \(completion\): field 'text' must be text, got int 5"):
        prepare(config(tmp_path, [{"path": path, "type": "completion"}]), mistral_tok, seed=0)


def test_empty_dataset(tmp_path, mistral_tok):
    """An entry whose file gives no rows is named (datasets[i] and its path), here the second of two."""
    good = write_jsonl(tmp_path / "g.jsonl", [{"text": "some words"}])
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(DataError, match=r"^datasets\[1\] .*e\.jsonl: holds no rows"):
        prepare(config(tmp_path, [{"path": good, "type": "completion"}, {"path": str(tmp_path / "e.jsonl"),
                                                                          "type": "completion"}]), mistral_tok, seed=0)


def test_completion_adds_bos_eos_and_splits_long_rows(tmp_path, mistral_tok, smol_tok):
    assert show(encode_row("completion", {"text": "Hello world"}, mistral_tok), mistral_tok) == "<s> ▁Hello ▁world </s>"
    assert show(encode_row("completion", {"text": "Hello</s>"}, mistral_tok), mistral_tok) == "<s> ▁Hello </s>"
    assert show(encode_row("completion", {"text": "Hi"}, smol_tok), smol_tok) == "Hi <|im_end|>"  # no BOS added
    path = write_jsonl(tmp_path / "d.jsonl", [{"body": "one two three four five six " * 3}, {"body": ""}])
    ref = mistral_tok("one two three four five six " * 3)["input_ids"] + [2]  # axolotl: tokenizer(text) + eos
    assert len(ref) == 21
    p = prepare(config(tmp_path, [{"path": path, "type": "completion", "field": "body"}], sequence_len=8,
                       shuffle_merged_datasets=False), mistral_tok, seed=0)
    assert [r["input_ids"] for r in rows_of(p.train)] == [ref[0:8], ref[8:16], ref[16:21]]
    assert all(r["labels"] == r["input_ids"] for r in rows_of(p.train))
    assert p.summary.train.rows_in == 2 and p.summary.train.dropped == {"shorter than 2 tokens": 1}


def test_pretokenized_rows_without_type(tmp_path, mistral_tok):
    path = write_jsonl(tmp_path / "d.jsonl", [{"input_ids": [1, 5, 6], "labels": [-100, 5, 6]},
                                              {"input_ids": [1, 7, 8], "attention_mask": [1, 1, 0]}])
    p = prepare(config(tmp_path, [{"path": path}], shuffle_merged_datasets=False), mistral_tok, seed=0)
    assert rows_of(p.train) == [{"input_ids": [1, 5, 6], "labels": [-100, 5, 6]},
                                {"input_ids": [1, 7, 8], "labels": [1, 7, -100]}]
    bad = write_jsonl(tmp_path / "b.jsonl", [{"input_ids": [1, "x"]}])
    with pytest.raises(DataError, match=r"b.jsonl line 1 \(pre-tokenized\): field 'input_ids' must be a list of integers, got str 'x'"):
        prepare(config(tmp_path, [{"path": bad}]), mistral_tok, seed=0)


def test_pretraining_stream_packs_like_axolotl(mistral_tok):
    rows = list(pack_stream(iter(["one two", "three", "four five six seven eight nine"]), mistral_tok, 8))
    # each text: <s> + at most 6 tokens + </s> + <pad> (pad = eos: the tokenizer has none); greedy, padded to 8
    assert rows == [
        {"input_ids": [1, 624, 989, 2, 2, 2, 2, 2], "labels": [1, 624, 989, 2, -100, -100, -100, -100],
         "attention_mask": [1, 1, 1, 1, 0, 0, 0, 0]},
        {"input_ids": [1, 1712, 2, 2, 2, 2, 2, 2], "labels": [1, 1712, 2, -100, -100, -100, -100, -100],
         "attention_mask": [1, 1, 1, 0, 0, 0, 0, 0]},
        {"input_ids": [1, 2308, 3359, 3522, 6671, 5435, 2, 2], "labels": [1, 2308, 3359, 3522, 6671, 5435, 2, -100],
         "attention_mask": [1, 1, 1, 1, 1, 1, 1, 0]},
    ]


def test_dataset_processes_give_the_same_rows_and_errors(tmp_path, mistral_tok, monkeypatch):
    from newtune.data import executors, sources

    monkeypatch.setattr(executors, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(sources, "BATCH", 7)
    rows = [io_row(f"question {i}", f" answer {i}") for i in range(50)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    ds = [{"path": path, "type": "input_output"}]
    one = prepare(config(tmp_path, ds, shuffle_merged_datasets=False), mistral_tok, seed=0)
    # the process count is not part of the cache key: a second cache root makes the 2-process run tokenize again
    two = prepare(config(tmp_path, ds, shuffle_merged_datasets=False, dataset_num_proc=2,
                         dataset_prepared_path=str(tmp_path / "prep2")), mistral_tok, seed=0)
    assert Path(one.summary.cache_path).name == Path(two.summary.cache_path).name and not two.summary.cached
    assert rows_of(two.train) == rows_of(one.train) and len(two.train) == 50
    bad = write_jsonl(tmp_path / "b.jsonl", rows[:30] + [{"text": "x"}] + rows[:5])
    with pytest.raises(DataError, match=r"b.jsonl line 31 \(input_output\): missing field 'segments'"):
        prepare(config(tmp_path, [{"path": bad, "type": "input_output"}], dataset_num_proc=2), mistral_tok, seed=0)


def test_pretraining_stream_reads_skips_and_names_bad_rows(tmp_path, mistral_tok):
    from newtune.data.formats.pretraining import prepare_stream

    path = write_jsonl(tmp_path / "p.jsonl", [{"body": "one two"}, {"body": "three"}, {"other": 1}])
    raw = {"pretraining_dataset": [{"path": path, "text_column": "body", "skip": 1}], "max_steps": 5, "sequence_len": 8}
    stream = prepare_stream(load_config(None, raw=raw).data, mistral_tok)
    with pytest.raises(DataError, match=r"p.jsonl line 3: missing field 'body' \(row has: other\)"):
        next(stream)
    raw["pretraining_dataset"][0]["path"] = write_jsonl(tmp_path / "q.jsonl", [{"body": "one two"}, {"body": "three"}])
    assert list(prepare_stream(load_config(None, raw=raw).data, mistral_tok)) == [
        {"input_ids": [1, 1712, 2, 2, 2, 2, 2, 2], "labels": [1, 1712, 2, -100, -100, -100, -100, -100],
         "attention_mask": [1, 1, 1, 0, 0, 0, 0, 0]}]


@pytest.mark.parametrize("kind", ["alpaca", "chat_template"])
def test_sequence_len_below_the_prompt_format_is_refused_before_encoding(tmp_path, smol_tok, kind):
    from newtune.data.room import template_tokens
    from newtune.data.rowcodec import format_context

    if kind == "alpaca":
        row = {"instruction": "Name a colour.", "input": "", "output": "Blue."}
    else:
        row = {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]}
    path = write_jsonl(tmp_path / "d.jsonl", [row] * 3)
    data = config(tmp_path, [{"path": path, "type": kind}], sequence_len=64)
    ds = data.datasets[0]
    fixed, where = template_tokens(ds, data, smol_tok, format_context(data, smol_tok))
    full = len(prepare(data, smol_tok, seed=0).train[0]["input_ids"])
    assert where == "d.jsonl line 1" and 10 < fixed < full  # the alpaca preamble / SmolLM2's system prompt
    with pytest.raises(DataError, match=rf"sequence_len \({fixed}\) leaves no room for text: the prompt format of "
                                        rf"datasets\[0\] \(type {kind}\) takes {fixed} tokens") as e:
        prepare(config(tmp_path, [{"path": path, "type": kind}], sequence_len=fixed), smol_tok, seed=0)
    assert e.value.where == "sequence_len"
    assert len(prepare(config(tmp_path, [{"path": path, "type": kind}], sequence_len=full), smol_tok, seed=0).train) == 3


def test_formats_without_a_template_have_no_floor(tmp_path, mistral_tok):
    from newtune.data.room import template_tokens
    from newtune.data.rowcodec import format_context

    path = write_jsonl(tmp_path / "d.jsonl", [io_row("Q", " A")])
    data = config(tmp_path, [{"path": path, "type": "input_output"}], sequence_len=8)
    assert template_tokens(data.datasets[0], data, mistral_tok, format_context(data, mistral_tok))[0] == 0
    assert len(prepare(data, mistral_tok, seed=0).train) == 1
