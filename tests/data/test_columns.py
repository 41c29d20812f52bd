"""Flat token columns and the vectorized keep policy: exact rows, sources and stats."""

from types import SimpleNamespace

import pytest

from newtune.data.columns import concat, from_encoded, from_pieces
from newtune.data.filters import PartStats, keep_rows
from newtune.errors import DataError

I = -100  # noqa: E741


def rows_of(cols):
    return [(r["input_ids"], r["labels"]) for r in cols.to_encoded()]


def sample():
    return from_encoded([{"input_ids": [1, 2, 3, 4, 5], "labels": [I, I, 3, 4, 5]},
                         {"input_ids": [6], "labels": [6]},
                         {"input_ids": [], "labels": []},
                         {"input_ids": [7, 8, 9], "labels": [I, I, I]}])


def test_from_pieces_labels_pieces_and_handles_empty_rows():
    cols = from_pieces([[1, 2], [3], [], [4, 5, 6], [7]], [False, True, True, False, True], [2, 0, 1, 2])
    assert rows_of(cols) == [([1, 2, 3], [I, I, 3]), ([], []), ([], []), ([4, 5, 6, 7], [I, I, I, 7])]
    assert cols.source.tolist() == [0, 1, 2, 3]


def test_select_truncate_chunk_keep_tokens_and_sources():
    cols = sample()
    assert rows_of(cols.select(cols.source[[0, 3]])) == [([1, 2, 3, 4, 5], [I, I, 3, 4, 5]), ([7, 8, 9], [I, I, I])]
    assert rows_of(cols.truncate(2)) == [([1, 2], [I, I]), ([6], [6]), ([], []), ([7, 8], [I, I])]
    chunked = cols.chunk(2)
    assert rows_of(chunked) == [([1, 2], [I, I]), ([3, 4], [3, 4]), ([5], [5]), ([6], [6]), ([], []),
                                ([7, 8], [I, I]), ([9], [I])]
    assert chunked.source.tolist() == [0, 0, 0, 1, 2, 3, 3]
    both = concat([cols.select(cols.source[[3]]), chunked])
    assert rows_of(both)[:2] == [([7, 8, 9], [I, I, I]), ([1, 2], [I, I])]
    assert both.source.tolist() == [3, 0, 0, 0, 1, 2, 3, 3]


def config(strategy="drop", sequence_len=4):
    return SimpleNamespace(sequence_len=sequence_len, excess_length_strategy=strategy)


def test_keep_rows_drop_policy_stats_in_row_order():
    stats = PartStats()
    where = ["f line 1", "f line 2", "f line 3", "f line 4"]
    kept = keep_rows(sample(), where, config("drop"), stats, None)
    assert rows_of(kept) == [([7, 8, 9], [I, I, I])]
    assert list(stats.dropped.items()) == [("longer than sequence_len (4)", 1), ("shorter than 2 tokens", 2)]
    assert (stats.rows_out, stats.tokens, stats.trainable, stats.zero_trainable) == (1, 3, 0, 1)
    assert stats.zero_trainable_rows == ["f line 4"]


def test_keep_rows_truncate_and_raise():
    stats = PartStats()
    kept = keep_rows(sample(), list("abcd"), config("truncate"), stats, None)
    assert rows_of(kept) == [([1, 2, 3, 4], [I, I, 3, 4]), ([7, 8, 9], [I, I, I])]
    assert (stats.truncated, stats.tokens, stats.trainable) == (1, 7, 2)
    with pytest.raises(DataError) as e:
        keep_rows(sample(), list("abcd"), config("raise"), PartStats(), None)
    assert e.value.where == "a" and e.value.problem == "row has 5 tokens, more than sequence_len (4)"


def test_keep_rows_dedup_across_batches():
    seen: set[bytes] = set()
    stats = PartStats()
    one = from_encoded([{"input_ids": [1, 2], "labels": [1, 2]}, {"input_ids": [1, 2], "labels": [I, 2]},
                        {"input_ids": [1, 2], "labels": [1, 2]}])
    assert rows_of(keep_rows(one, list("abc"), config(), stats, seen)) == [([1, 2], [1, 2]), ([1, 2], [I, 2])]
    assert rows_of(keep_rows(one, list("abc"), config(), stats, seen)) == []
    assert stats.dropped == {"exact duplicates": 4} and stats.rows_out == 2


@pytest.mark.parametrize("tok_name", ["smol_tok", "mistral_tok"])
def test_piece_ids_equal_the_tokenizer_call(request, tok_name):
    from newtune.data.encode import piece_ids

    tok = request.getfixturevalue(tok_name)
    texts = ["", " ", "  hello", "\n\nworld", "<s>", "</s>", "a</s>b", "<|im_start|>user\nhi<|im_end|>",
             "ünïcödé 日本語", "x" * 300, "\t tab", " <s> ", "Hello", "Hello"]
    assert piece_ids(texts, tok) == tok(texts, add_special_tokens=False)["input_ids"]
