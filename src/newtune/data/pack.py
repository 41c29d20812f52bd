"""Sample packing: place rows (by length) into bins of `capacity` tokens. Pure numpy, no torch.

Best-fit decreasing: rows are taken longest first, each goes into the open bin whose free space
is the smallest that still fits it, else into a new bin. The bins are then shuffled with a seed,
so one packing is reproducible and long and short rows are spread over the run.

>>> bins = pack_lengths([5, 3, 4, 2, 6], capacity=8, seed=None)
>>> [b.tolist() for b in bins]
[[3, 4], [0, 1], [2]]
>>> packing_efficiency([5, 3, 4, 2, 6], bins, capacity=8)
0.8333333333333334
>>> sorted(b.tolist() for b in pack_lengths([5, 3, 4, 2, 6], capacity=8, seed=0))
[[0, 1], [2], [3, 4]]

Row 4 (6 tokens) opens bin 1, row 0 (5) bin 2, row 2 (4) bin 3; row 1 (3) best fits bin 2
(3 free, bin 3 has 4), row 3 (2) best fits bin 1 (2 free). Row indices inside a bin keep dataset order.
Unpacking is `np.split(tokens, np.cumsum(lengths[bin])[:-1])` over a bin's concatenated tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class _FreeSpaceIndex:
    """Which free-space values 0..capacity have an open bin; finds the smallest value >= need.

    A segment tree of counts over free space, so each query and update costs O(log capacity).
    """

    def __init__(self, capacity: int) -> None:
        self.size = 1
        while self.size < capacity + 1:
            self.size *= 2
        self.count = [0] * (2 * self.size)

    def add(self, space: int, delta: int) -> None:
        i = space + self.size
        while i:
            self.count[i] += delta
            i //= 2

    def smallest_at_least(self, need: int) -> int | None:
        """The smallest free space >= need that has an open bin, or None."""
        count, size = self.count, self.size
        i = need + size
        if count[i]:
            return need
        # Climb until a right sibling holds something, then descend to its leftmost nonempty leaf.
        while i > 1:
            if i % 2 == 0 and count[i + 1]:
                i += 1
                while i < size:
                    i = 2 * i if count[2 * i] else 2 * i + 1
                return i - size
            i //= 2
        return None


def pack_lengths(lengths: Sequence[int] | np.ndarray, capacity: int, seed: int | None = 0) -> list[np.ndarray]:
    """Bins of row indices (each an int64 array in ascending order), every bin's total <= capacity.

    `seed=None` keeps the bins in the order they were opened; otherwise they are shuffled with
    `np.random.default_rng(seed)`. Rows longer than capacity or empty are a bug upstream (the data
    pipeline drops or truncates them), so they raise ValueError.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if capacity < 1:
        raise ValueError(f"capacity must be positive, got {capacity}")
    if lengths.size and (lengths.max() > capacity or lengths.min() < 1):
        bad = int(np.flatnonzero((lengths > capacity) | (lengths < 1))[0])
        raise ValueError(f"row {bad} has {lengths[bad]} tokens; every row needs 1..{capacity}")
    order = np.argsort(-lengths, kind="stable")
    free = _FreeSpaceIndex(capacity)
    bins_by_space: dict[int, list[int]] = {}  # free space -> open bins with exactly that space
    members: list[list[int]] = []
    space_left: list[int] = []
    for row, n in zip(order.tolist(), lengths[order].tolist(), strict=True):
        space = free.smallest_at_least(n)
        if space is None:
            b = len(members)
            members.append([row])
            space_left.append(capacity - n)
        else:
            b = bins_by_space[space].pop()
            free.add(space, -1)
            members[b].append(row)
            space_left[b] = space - n
        if space_left[b] > 0:  # a full bin never takes another row
            bins_by_space.setdefault(space_left[b], []).append(b)
            free.add(space_left[b], 1)
    bins = [np.sort(np.asarray(m, dtype=np.int64)) for m in members]
    if seed is not None:
        perm = np.random.default_rng(seed).permutation(len(bins))
        bins = [bins[i] for i in perm]
    return bins


def packing_efficiency(lengths: Sequence[int] | np.ndarray, bins: Sequence[np.ndarray], capacity: int) -> float:
    """Real tokens / (bins × capacity): 1.0 means no padding at all."""
    if not bins:
        return 1.0
    lengths = np.asarray(lengths, dtype=np.int64)
    return float(sum(int(lengths[b].sum()) for b in bins)) / (len(bins) * capacity)


def batches_of_bins(bins: Sequence[np.ndarray], bins_per_batch: int, drop_last: bool = False) -> list[list[np.ndarray]]:
    """Group bins into micro-batches of `bins_per_batch` bins (the last may be short unless dropped)."""
    out = [list(bins[i : i + bins_per_batch]) for i in range(0, len(bins), bins_per_batch)]
    if drop_last and out and len(out[-1]) < bins_per_batch:
        out.pop()
    return out
