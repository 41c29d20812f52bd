"""How a dataset's batches get encoded: serially, on tokenizer threads, or in forked worker processes.

Each runs the one function `row_errors.encode_batch` (batch → token columns, naming a failing row) and
yields (where, columns) per batch in source order.
"""

from __future__ import annotations

from collections.abc import Iterator

from newtune.config.data import DataConfig, DatasetConfig
from newtune.data.columns import TokenColumns
from newtune.data.encode import plain_backend
from newtune.data.row_errors import encode_batch
from newtune.data.rowcodec import render_rows, tokenize_rendered
from newtune.data.sources import RowBatch, iter_batches, local_files
from newtune.data.types import FormatContext, Tokenizer
from newtune.errors import DataError, NewtuneError

TOKENIZE_THREADS = 2  # batches tokenized at once: one in Rust while the other's ids are collected (holding the GIL)
PARALLEL_MIN_BYTES = 16 << 20  # smaller sources are encoded in-process: workers would not pay for themselves
_worker_state: tuple | None = None  # (ds, data, tokenizer, ctx), inherited by forked workers


def encoded_batches(ds: DatasetConfig, data: DataConfig, tok: Tokenizer, ctx: FormatContext, seed: int | None = None,
                    ) -> Iterator[tuple[list[str], TokenColumns]]:
    """(where, encoded) per batch of `ds`, in order; in `dataset_num_proc` forked workers for big local data.
    `seed`: the run's seed, for the rows a `weight` keeps."""
    procs = data.dataset_num_proc or 1
    files = local_files(ds)
    if procs <= 1 or files is None or sum(f.stat().st_size for f in files) < PARALLEL_MIN_BYTES:
        if plain_backend(tok) is None:  # tokenizer calls may reconfigure it: keep them on one thread
            for batch in iter_batches(ds, seed=seed):
                yield batch.where, encode_batch(batch, ds, data, tok, ctx)
            return
        yield from _encoded_overlapped(ds, data, tok, ctx, seed)
        return
    yield from _encoded_in_workers(ds, data, tok, ctx, procs, seed)


def _encoded_overlapped(ds: DatasetConfig, data: DataConfig, tok: Tokenizer, ctx: FormatContext, seed: int | None,
                        ) -> Iterator[tuple[list[str], TokenColumns]]:
    """Batches in order; batches are tokenized on other threads (the Rust tokenizer releases the GIL) while this
    one reads and renders the next batch and the caller filters and writes the previous one."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    def finish(batch: RowBatch, job: Future | None) -> tuple[list[str], TokenColumns]:
        if job is not None:
            try:
                return batch.where, job.result()
            except Exception:  # noqa: S110  encode_batch redoes the batch to name the failing row
                pass
        return batch.where, encode_batch(batch, ds, data, tok, ctx)

    with ThreadPoolExecutor(TOKENIZE_THREADS, thread_name_prefix="newtune-tokenize") as pool:
        pending: deque[tuple[RowBatch, Future | None]] = deque()
        for batch in iter_batches(ds, seed=seed):
            try:
                job: Future | None = pool.submit(tokenize_rendered, *render_rows(batch.rows, ds, data, tok, ctx), tok)
            except Exception:  # named by `finish`, after the batches before it
                job = None
            pending.append((batch, job))
            if len(pending) > TOKENIZE_THREADS:
                yield finish(*pending.popleft())
        while pending:
            yield finish(*pending.popleft())


def _encoded_in_workers(ds: DatasetConfig, data: DataConfig, tok: Tokenizer, ctx: FormatContext,
                        procs: int, seed: int | None) -> Iterator[tuple[list[str], TokenColumns]]:
    """At most 2 batches per worker in flight, so memory stays bounded; results come back in order."""
    import multiprocessing as mp
    import os
    from collections import deque

    global _worker_state
    _worker_state = (ds, data, tok, ctx)
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # each worker tokenizes on one thread; no fork warning
    try:
        with mp.get_context("fork").Pool(procs) as pool:
            pending: deque = deque()
            for batch in iter_batches(ds, seed=seed):
                pending.append(pool.apply_async(_encode_in_worker, (batch,)))
                if len(pending) >= 2 * procs:
                    yield _worker_result(pending.popleft().get())
            while pending:
                yield _worker_result(pending.popleft().get())
    finally:
        _worker_state = None
        if previous is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous


def _encode_in_worker(batch: RowBatch) -> tuple:
    ds, data, tok, ctx = _worker_state  # type: ignore[misc]
    try:
        return batch.where, encode_batch(batch, ds, data, tok, ctx)
    except NewtuneError as e:  # sent back as plain values: NewtuneError does not pickle
        return ("error", e.where, e.problem, e.hint)


def _worker_result(result: tuple) -> tuple[list[str], TokenColumns]:
    if result[0] == "error":
        raise DataError(*result[1:])
    return result  # type: ignore[return-value]
