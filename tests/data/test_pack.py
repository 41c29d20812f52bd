"""Bin packing: exact worked examples and properties (hypothesis) of pack_lengths."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newtune.data import pack
from newtune.data.pack import batches_of_bins, pack_lengths, packing_efficiency


def test_docstring_examples_hold():
    assert doctest.testmod(pack).failed == 0


def test_best_fit_decreasing_worked_example():
    bins = pack_lengths([5, 3, 4, 2, 6], capacity=8, seed=None)
    assert [b.tolist() for b in bins] == [[3, 4], [0, 1], [2]]
    assert packing_efficiency([5, 3, 4, 2, 6], bins, 8) == 20 / 24


def test_best_fit_prefers_the_tightest_bin():
    # 7 opens A (free 3), 5 opens B (free 5); 3 fits A exactly rather than B (first fit would also
    # pick A); then 5 fills B exactly: 2 bins, 100%.
    bins = pack_lengths([7, 5, 3, 5], capacity=10, seed=None)
    assert [b.tolist() for b in bins] == [[0, 2], [1, 3]]


def test_seeded_shuffle_is_deterministic_and_only_reorders():
    lengths = np.arange(1, 40) % 13 + 1
    a, b = pack_lengths(lengths, 16, seed=3), pack_lengths(lengths, 16, seed=3)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    plain = pack_lengths(lengths, 16, seed=None)
    assert sorted(x.tolist() for x in a) == sorted(x.tolist() for x in plain)
    assert [x.tolist() for x in a] != [x.tolist() for x in plain]


def test_rows_that_cannot_fit_raise():
    with pytest.raises(ValueError, match="row 1 has 9 tokens"):
        pack_lengths([3, 9], capacity=8)
    with pytest.raises(ValueError, match="row 0 has 0 tokens"):
        pack_lengths([0, 2], capacity=8)


def test_empty_input_gives_no_bins():
    assert pack_lengths([], capacity=8) == []
    assert packing_efficiency([], [], 8) == 1.0


def test_batches_of_bins():
    bins = [np.array([i]) for i in range(5)]
    assert [[int(b[0]) for b in g] for g in batches_of_bins(bins, 2)] == [[0, 1], [2, 3], [4]]
    assert len(batches_of_bins(bins, 2, drop_last=True)) == 2


def test_efficiency_on_a_realistic_mix_is_at_least_99_percent():
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(mean=5.3, sigma=0.8, size=5000).astype(int), 8, 2048)
    bins = pack_lengths(lengths, 2048)
    assert packing_efficiency(lengths, bins, 2048) >= 0.99


capacities = st.integers(min_value=1, max_value=64)


@settings(max_examples=200, deadline=None)
@given(capacities.flatmap(lambda c: st.tuples(st.just(c), st.lists(st.integers(1, c), max_size=60))),
       st.one_of(st.none(), st.integers(0, 2**31)))
def test_every_row_in_exactly_one_bin_and_no_bin_overflows(case, seed):
    capacity, lengths = case
    bins = pack_lengths(lengths, capacity, seed=seed)
    placed = np.concatenate(bins) if bins else np.array([], dtype=np.int64)
    assert sorted(placed.tolist()) == list(range(len(lengths)))
    arr = np.asarray(lengths, dtype=np.int64)
    assert all(int(arr[b].sum()) <= capacity for b in bins)
    assert all(b.tolist() == sorted(b.tolist()) for b in bins)
    # Best fit opens a bin only when the row fits no open bin, so at most one bin is half full or less.
    assert sum(2 * int(arr[b].sum()) <= capacity for b in bins) <= 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 1000), min_size=1, max_size=12), max_size=30))
def test_unpacking_a_bin_restores_its_rows(rows):
    lengths = [len(r) for r in rows]
    for b in pack_lengths(lengths, 16, seed=1):
        tokens = np.concatenate([np.asarray(rows[i]) for i in b])
        pieces = np.split(tokens, np.cumsum([lengths[i] for i in b])[:-1])
        assert [p.tolist() for p in pieces] == [rows[i] for i in b]
