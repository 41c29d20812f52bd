"""Padded and packed batches: exact tensors, boundary labels, position_ids and trained counts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newtune.train.collate import pack_batch, pad_batch

A = {"input_ids": [1, 10, 11, 12], "labels": [-100, -100, 11, 12]}
B = {"input_ids": [1, 20, 21], "labels": [1, 20, 21]}
C = {"input_ids": [1, 30], "labels": [-100, 30]}


def test_pad_batch_right_pads_with_masked_labels():
    b = pad_batch([A, B], pad_id=0)
    assert b.input_ids.tolist() == [[1, 10, 11, 12], [1, 20, 21, 0]]
    assert b.labels.tolist() == [[-100, -100, 11, 12], [1, 20, 21, -100]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert b.position_ids is None and not b.packed
    # Shifted as the loss sees them: A trains 11, 12; B trains 20, 21 (its label 1 at t=0 is never a target).
    assert b.n_trained == 4 and b.n_tokens == 7
    assert b.trained_positions.tolist() == [1, 2, 4, 5]  # flat b*T + t whose label at t+1 is trained


def test_pad_to_sequence_len():
    b = pad_batch([C], pad_id=7, pad_to=5)
    assert b.input_ids.tolist() == [[1, 30, 7, 7, 7]] and b.labels.tolist() == [[-100, 30, -100, -100, -100]]
    assert pad_batch([A, C], pad_id=0).input_ids.shape == (2, 4)  # without pad_to: the longest row
    with pytest.raises(ValueError, match="does not fit pad_to=3"):
        pad_batch([A], pad_id=0, pad_to=3)


def test_pack_batch_restarts_positions_and_masks_each_rows_first_token():
    b = pack_batch([[A, B], [C]], pad_id=0, pad_to=8)
    assert b.input_ids.tolist() == [[1, 10, 11, 12, 1, 20, 21, 0], [1, 30, 0, 0, 0, 0, 0, 0]]
    # B's first label (1) becomes -100: it would be predicted from A's last token.
    assert b.labels.tolist() == [[-100, -100, 11, 12, -100, 20, 21, -100],
                                 [-100, 30, -100, -100, -100, -100, -100, -100]]
    assert b.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2, 0], [0, 1, 0, 1, 2, 3, 4, 5]]
    assert b.attention_mask is None and b.packed
    assert b.n_trained == 5 and b.n_tokens == 9
    assert b.trained_positions.tolist() == [1, 2, 4, 5, 8]
    assert b.model_inputs().keys() == {"input_ids", "position_ids", "use_cache"}
    assert b.model_inputs()["use_cache"] is False  # a KV cache would turn off packed-mask detection


def test_pack_batch_without_pad_to_uses_longest_bin():
    b = pack_batch([[A], [B, C]], pad_id=0)
    assert b.input_ids.tolist() == [[1, 10, 11, 12, 0], [1, 20, 21, 1, 30]]
    assert b.position_ids.tolist() == [[0, 1, 2, 3, 0], [0, 1, 2, 0, 1]]


def test_bad_rows_raise():
    with pytest.raises(ValueError, match="equal length"):
        pad_batch([{"input_ids": [1, 2], "labels": [1]}], pad_id=0)


def document_starts(position_ids) -> list[int]:
    """Where each packed row (or the trailing padding block) begins: every index whose position is 0."""
    return np.flatnonzero(np.asarray(position_ids) == 0).tolist()


rows_strategy = st.lists(
    st.lists(st.tuples(st.integers(1, 99), st.booleans()), min_size=1, max_size=8).map(
        lambda toks: {"input_ids": [t for t, _ in toks], "labels": [t if k else -100 for t, k in toks]}),
    min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(rows_strategy, min_size=1, max_size=3), st.integers(0, 5))
def test_packed_rows_unpack_exactly(bins, extra):
    width = max(sum(len(r["input_ids"]) for r in rows) for rows in bins) + extra
    b = pack_batch(bins, pad_id=0, pad_to=width)
    for k, rows in enumerate(bins):
        starts = document_starts(b.position_ids[k])
        lengths = [len(r["input_ids"]) for r in rows]
        assert starts[: len(rows)] == np.cumsum([0, *lengths[:-1]]).tolist()
        used = sum(lengths)
        pieces = np.split(b.input_ids[k, :used].numpy(), starts[1 : len(rows)])
        assert [p.tolist() for p in pieces] == [r["input_ids"] for r in rows]
        labels = np.split(b.labels[k, :used].numpy(), starts[1 : len(rows)])
        assert [lab.tolist() for lab in labels] == [[-100, *r["labels"][1:]] for r in rows]
        assert (b.labels[k, used:] == -100).all() and (b.input_ids[k, used:] == 0).all()
    # n_trained is what the shifted loss sees: each row's labels after its first token.
    assert b.n_trained == sum(sum(x != -100 for x in r["labels"][1:]) for rows in bins for r in rows)
    assert b.n_trained == len(b.trained_positions)


def test_flattened_pack_is_one_unpadded_row_with_varlen_boundaries():
    b = pack_batch([[A, B], [C]], pad_id=0, flatten=True)
    assert b.input_ids.tolist() == [[1, 10, 11, 12, 1, 20, 21, 1, 30]]
    assert b.labels.tolist() == [[-100, -100, 11, 12, -100, 20, 21, -100, 30]]
    assert b.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2, 0, 1]]
    assert b.n_trained == 5 and b.n_tokens == 9
    kw = b.model_inputs()
    assert kw["cu_seq_lens_q"].tolist() == kw["cu_seq_lens_k"].tolist() == [0, 4, 7, 9]
    assert str(kw["cu_seq_lens_q"].dtype) == "torch.int32"  # flash-attn's varlen kernels take int32
    assert kw["max_length_q"] == kw["max_length_k"] == 4
