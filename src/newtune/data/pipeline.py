"""source → format → encode → filter → cache → seeded shuffle and split: `prepare(cfg.data, tok, seed=)`.

The cache holds the encoded, filtered, deduplicated rows in source order; shuffling and the
val_set_size split are redone from the seed each time (cheap index work).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from newtune.config.data import AFTER_CACHE, DataConfig, DatasetConfig
from newtune.data import cache
from newtune.data.columns import TokenColumns
from newtune.data.encode import plain_backend
from newtune.data.entries import NOTHING_TRAINED_HINT, check_roles_to_train, located, no_rows
from newtune.data.filters import PartStats, keep_rows
from newtune.data.options import options_of
from newtune.data.rowcodec import (
    encode_rows,
    encode_rows_columns,
    expand_columns,
    format_context,
    render_rows,
    tokenize_rendered,
)
from newtune.data.sources import RowBatch, iter_batches, local_files
from newtune.data.types import Encoded, FormatContext
from newtune.errors import DataError, NewtuneError

EVAL_FILE = "eval.arrow"
GC_YOUNG = 20_000  # young-generation GC threshold while encoding (Python's default is 700)


@dataclass
class Summary:
    train: PartStats
    test: PartStats | None
    train_rows: int = 0
    eval_rows: int = 0
    seconds: float = 0.0
    cached: bool = False
    cache_path: str = ""


@dataclass
class Rows:
    """Cached Arrow rows seen in a seeded order, readable without importing `datasets` (fast preprocess)."""

    path: Path
    order: Any = None  # numpy index array, or None for file order

    def table(self) -> Any:
        import pyarrow as pa

        return pa.ipc.open_stream(pa.memory_map(str(self.path))).read_all()

    def __len__(self) -> int:
        return len(self.order) if self.order is not None else self.table().num_rows

    def iter_encoded(self, limit: int | None = None, batch_size: int = 1000) -> Iterator[Encoded]:
        table = self.table()
        n = len(self) if limit is None else min(limit, len(self))
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            part = table.slice(start, stop - start) if self.order is None else table.take(cache.int_array(self.order[start:stop].astype('int64')))
            yield from ({"input_ids": i, "labels": lab} for i, lab in
                        zip(part.column("input_ids").to_pylist(), part.column("labels").to_pylist(), strict=True))

    def lengths(self) -> Any:
        """Row lengths as a numpy array (read from the int32 buffers; ChunkedArray.to_numpy imports pandas)."""
        import numpy as np

        chunks = self.table().column("length").chunks
        lengths = np.concatenate([np.frombuffer(c.buffers()[1], np.int32, len(c), c.offset * 4) for c in chunks]
                                 or [np.zeros(0, np.int32)])
        return lengths if self.order is None else lengths[self.order]

    def to_dataset(self, task_ids: Any = None) -> Any:
        """A memory-mapped `datasets.Dataset` (input_ids, labels, length) in this order; `task_ids` (one per
        cached row, in file order) adds a task_id column."""
        ds = cache.open_rows(self.path)
        if task_ids is not None:
            ds = ds.add_column("task_id", task_ids.tolist())
        return ds if self.order is None else ds.select(self.order, keep_in_memory=True)


@dataclass
class PreparedRows:
    train: Rows
    eval: Rows | None
    summary: Summary


@dataclass
class PreparedData:
    train: Any  # datasets.Dataset: input_ids, labels, length
    eval: Any | None
    summary: Summary


def prepare(data: DataConfig, tokenizer: Any, *, seed: int, console: Any = None, tasks: bool = False) -> PreparedData:
    """Encode (or reuse the cache), then shuffle and split as the config says; `datasets.Dataset`s.

    `tasks` (multitask prompt tuning): add a task_id column, each row's dataset's `task_id` (default 0)."""
    rows = prepare_rows(data, tokenizer, seed=seed, console=console)
    if not tasks:
        return PreparedData(rows.train.to_dataset(), rows.eval.to_dataset() if rows.eval else None, rows.summary)
    train_tasks = task_column(data.datasets, rows.summary.train.per_dataset)
    evalset = None
    if rows.eval is not None:
        from_test = rows.eval.path.name == EVAL_FILE
        tasks = task_column(data.test_datasets, rows.summary.test.per_dataset) if from_test else train_tasks
        evalset = rows.eval.to_dataset(task_ids=tasks)
    return PreparedData(rows.train.to_dataset(task_ids=train_tasks), evalset, rows.summary)


def task_column(entries: list[DatasetConfig] | None, per_dataset: list[int]) -> Any:
    """Each cached row's task (multitask prompt tuning): its dataset's task_id, 0 where unset."""
    import numpy as np

    return np.repeat([ds.task_id or 0 for ds in entries or []], per_dataset).astype(np.int64)


def prepare_pretraining(data: DataConfig, tokenizer: Any, *, rows: int) -> PreparedData:
    """The first `rows` packed rows of the `pretraining_dataset` stream (all a max_steps run reads), in order.

    The stream has no end, so training reads exactly what its steps need, once, before the first step:
    the rows are then indexed like any dataset, which keeps resume exact.
    """
    from itertools import islice

    from datasets import Dataset

    from newtune.data.formats.pretraining import prepare_stream

    start = time.perf_counter()
    taken = list(islice(prepare_stream(data, tokenizer), rows))
    if not taken:
        raise DataError("pretraining_dataset", "the stream gave no text rows")
    columns = {"input_ids": [r["input_ids"] for r in taken], "labels": [r["labels"] for r in taken],
               "length": [sum(r["attention_mask"]) for r in taken]}
    stats = PartStats(rows_in=len(taken), rows_out=len(taken), tokens=sum(columns["length"]),
                      trainable=sum(sum(1 for x in lab if x != -100) for lab in columns["labels"]))
    summary = Summary(train=stats, test=None, train_rows=len(taken), eval_rows=0,
                      seconds=time.perf_counter() - start, cached=False, cache_path="")
    return PreparedData(Dataset.from_dict(columns), None, summary)


def prepare_rows(data: DataConfig, tokenizer: Any, *, seed: int, console: Any = None) -> PreparedRows:
    """As `prepare`, as light Arrow views."""
    from newtune.data.tokenizer import fingerprint

    start = time.perf_counter()
    if not data.datasets:
        raise DataError("datasets", "no datasets to prepare")
    if data.skip_prepare_dataset:
        entry, cached = uncached_rows(data, tokenizer, console), False
    else:
        root = cache.cache_dir(data)
        key = cache.cache_key(data.model_dump_json(exclude=AFTER_CACHE), fingerprint(tokenizer), source_identities(data))
        with cache.locked(root, key):
            entry = cache.lookup(root, key)
            cached = entry is not None
            if entry is None:
                if console is not None:
                    console.print(f"[dim]tokenizing → {root / key}[/dim]")
                with cache.staging(root, key) as tmp:
                    stats = build(data, tokenizer, tmp)
                    cache.write_meta(tmp, stats)
                entry = root / key
    meta = cache.read_meta(entry)
    train, evalset = shuffle_split(Rows(entry / cache.ROWS_FILE), data, seed)
    if (entry / EVAL_FILE).exists():
        evalset = Rows(entry / EVAL_FILE)
    summary = Summary(train=PartStats(**meta["train"]), test=PartStats(**meta["test"]) if meta.get("test") else None,
                      train_rows=len(train), eval_rows=len(evalset) if evalset is not None else 0,
                      seconds=time.perf_counter() - start, cached=cached, cache_path=str(entry))
    return PreparedRows(train, evalset, summary)


def uncached_rows(data: DataConfig, tokenizer: Any, console: Any) -> Path:
    """skip_prepare_dataset: tokenize for this process only, into a temp dir removed at exit; no cache read or written."""
    import atexit
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="newtune-rows-"))
    atexit.register(shutil.rmtree, tmp, True)
    if console is not None:
        console.print("[dim]tokenizing for this run only (skip_prepare_dataset: nothing cached)[/dim]")
    cache.write_meta(tmp, build(data, tokenizer, tmp))
    return tmp


def source_identities(data: DataConfig) -> list[str]:
    """size+mtime of every local file read (data and Jinja template files); hub ids stand for themselves."""
    out = []
    entries = [*data.datasets, *(data.test_datasets or [])]
    for ds in entries:
        files = local_files(ds)
        out += [cache.file_identity(f) for f in files] if files is not None else [f"hub:{ds.path}@{ds.revision}"]
    own = (ds.options if data.rl else dict(options_of(ds)) for ds in entries)  # rl: preference types' keys
    for jinja in [data.chat_template_jinja, *(o.get("chat_template_jinja") for o in own)]:
        if jinja and "{" not in jinja and Path(jinja).expanduser().is_file():  # a path, not inline Jinja
            out.append(cache.file_identity(Path(jinja).expanduser()))
    return out


def build(data: DataConfig, tokenizer: Any, directory: Path) -> dict:
    """Encode every part into Arrow files in `directory`; return the stats (stored as the cache meta)."""
    import gc

    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], GC_YOUNG), *threshold[1:])  # rows are short-lived: fewer young-GC passes
    try:
        return _build(data, tokenizer, directory)
    finally:
        gc.set_threshold(*threshold)


def _build(data: DataConfig, tokenizer: Any, directory: Path) -> dict:
    ctx = format_context(data, tokenizer)
    for i, ds in enumerate(data.datasets):
        check_template_room(ds, f"datasets[{i}]", data, tokenizer, ctx)
    for i, ds in enumerate(data.test_datasets or []):
        check_template_room(ds, f"test_datasets[{i}]", data, tokenizer, ctx)
    for i, ds in enumerate(data.datasets):
        check_roles_to_train(ds, f"datasets[{i}]", ctx)
    seen: set[bytes] | None = set() if data.dataset_exact_deduplication else None
    train = encode_part(data.datasets, data, tokenizer, ctx, directory / cache.ROWS_FILE, seen)
    test = None
    if data.test_datasets:
        test = encode_part(data.test_datasets, data, tokenizer, ctx, directory / EVAL_FILE, seen, "test_datasets")
    if train.rows_out == 0:
        raise DataError("datasets", f"no training rows left ({describe_drops(train) or 'the datasets are empty'})",
                        "check the dataset paths, sequence_len and excess_length_strategy")
    if train.trainable == 0:
        shown = ", ".join(train.zero_trainable_rows)
        raise DataError("datasets", f"no row has a trainable token: every label of the {train.rows_out} training rows "
                        f"is masked (e.g. {shown})", NOTHING_TRAINED_HINT)
    return {"train": asdict(train), "test": asdict(test) if test else None}


ROLE_KEYS = frozenset({"role", "from", "type", "name"})  # structure, not text: kept when blanking a row


def blank_text(value: Any, keep: frozenset[str]) -> Any:
    """`value` with every string emptied, except the values of keys in `keep` (roles and the like)."""
    if isinstance(value, str):
        return ""
    if isinstance(value, dict):
        return {k: v if k in keep and isinstance(v, str) else blank_text(v, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [blank_text(v, keep) for v in value]
    return value


def template_tokens(ds: DatasetConfig, data: DataConfig, tok: Any, ctx: FormatContext) -> tuple[int, str] | None:
    """Tokens of the dataset's first row with all its text emptied: what the prompt format adds by itself
    (system prompt, role markers, BOS/EOS). None for pre-tokenized rows or when the empty row is refused."""
    if ds.type is None:
        return None
    batch = next(iter(iter_batches(ds, batch_size=1)), None)
    if batch is None or not batch.rows:
        return None
    opts = options_of(ds)  # the role field stays (chat formats name it), all text is emptied
    mappings = getattr(opts, "message_property_mappings", None) or {}
    keep = ROLE_KEYS | {k for k in (getattr(opts, "message_field_role", None), mappings.get("role")) if k}
    try:
        encoded = encode_rows([blank_text(batch.rows[0], keep)], ds, data, tok, ctx)
    except Exception:  # an empty field the format refuses: the rows themselves will say what is wrong
        return None
    return (max(len(e["input_ids"]) for e in encoded), batch.where[0]) if encoded else None


def check_template_room(ds: DatasetConfig, name: str, data: DataConfig, tok: Any, ctx: FormatContext) -> None:
    """sequence_len must leave room for text after the prompt format's own tokens."""
    found = template_tokens(ds, data, tok, ctx)
    if found is not None and found[0] >= data.sequence_len:
        raise DataError("sequence_len", f"sequence_len ({data.sequence_len}) leaves no room for text: the prompt "
                        f"format of {name} (type {ds.type_name}) takes {found[0]} tokens by itself "
                        f"(its first row, {found[1]}, with every text field empty)",
                        f"raise sequence_len well above {found[0]}")


def describe_drops(stats: PartStats) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in stats.dropped.items())


def encode_part(entries: list[DatasetConfig], data: DataConfig, tok: Any, ctx: FormatContext, path: Path,
                seen: set[bytes] | None, label: str = "datasets") -> PartStats:
    stats = PartStats()
    sink = cache.ArrowRows(path)
    try:
        for i, ds in enumerate(entries):
            before, rows_before = stats.rows_out, stats.rows_in
            try:
                for where, cols in encoded_batches(ds, data, tok, ctx):
                    stats.rows_in += len(where)
                    sink.add(keep_rows(expand_columns(cols, ds, data.sequence_len), where, data, stats, seen))
            except DataError as e:
                raise (located(e, f"{label}[{i}]", ds) if len(entries) > 1 else e) from None
            if stats.rows_in == rows_before:
                raise DataError(f"{label}[{i}] {ds.path}", no_rows(ds),
                                "add rows to it, or remove this entry from " + label)
            stats.per_dataset.append(stats.rows_out - before)
    finally:
        sink.close()
    return stats


TOKENIZE_THREADS = 2  # batches tokenized at once: one in Rust while the other's ids are collected (holding the GIL)
PARALLEL_MIN_BYTES = 16 << 20  # smaller sources are encoded in-process: workers would not pay for themselves
_worker_state: tuple | None = None  # (ds, data, tokenizer, ctx), inherited by forked workers


def encoded_batches(ds: DatasetConfig, data: DataConfig, tok: Any, ctx: FormatContext,
                    ) -> Iterator[tuple[list[str], TokenColumns]]:
    """(where, encoded) per batch of `ds`, in order; in `dataset_num_proc` forked workers for big local data."""
    procs = data.dataset_num_proc or 1
    files = local_files(ds)
    if procs <= 1 or files is None or sum(f.stat().st_size for f in files) < PARALLEL_MIN_BYTES:
        if plain_backend(tok) is None:  # tokenizer calls may reconfigure it: keep them on one thread
            for batch in iter_batches(ds):
                yield batch.where, encode_batch(batch, ds, data, tok, ctx)
            return
        yield from _encoded_overlapped(ds, data, tok, ctx)
        return
    yield from _encoded_in_workers(ds, data, tok, ctx, procs)


def _encoded_overlapped(ds: DatasetConfig, data: DataConfig, tok: Any, ctx: FormatContext,
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
        for batch in iter_batches(ds):
            try:
                job: Future | None = pool.submit(tokenize_rendered, *render_rows(batch.rows, ds, data, tok, ctx), tok)
            except Exception:  # named by `finish`, after the batches before it
                job = None
            pending.append((batch, job))
            if len(pending) > TOKENIZE_THREADS:
                yield finish(*pending.popleft())
        while pending:
            yield finish(*pending.popleft())


def _encoded_in_workers(ds: DatasetConfig, data: DataConfig, tok: Any, ctx: FormatContext,
                        procs: int) -> Iterator[tuple[list[str], TokenColumns]]:
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
            for batch in iter_batches(ds):
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


def encode_batch(batch: RowBatch, ds: DatasetConfig, data: DataConfig, tok: Any, ctx: FormatContext) -> TokenColumns:
    """Encode a batch; if it fails, find the failing row and name it with its file and line."""
    try:
        return encode_rows_columns(batch.rows, ds, data, tok, ctx)
    except Exception as e:
        batch_error = e
    for row, where in zip(batch.rows, batch.where, strict=True):
        try:
            encode_rows([row], ds, data, tok, ctx)
        except NewtuneError as e:
            label = f"{where} ({ds.type_name or 'pre-tokenized'})"
            raise DataError(f"{label}: {e.where}" if e.where else label, e.problem, e.hint) from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise row_error(missing_field(row, ds, data, tok, ctx) or e, row, where, ds) from None
    raise batch_error  # no single row fails: a bug of ours, keep its traceback


def missing_field(row: dict, ds: DatasetConfig, data: DataConfig, tok: Any, ctx: FormatContext) -> KeyError | None:
    """Null fields (JSON null, or absent where other rows have them) that the format needs, as a KeyError."""
    present = {k: v for k, v in row.items() if v is not None}
    if len(present) == len(row):
        return None
    try:
        encode_rows([present], ds, data, tok, ctx)
    except KeyError as e:
        return e
    except Exception:
        return None
    return None


def row_error(e: Exception, row: dict, where: str, ds: DatasetConfig) -> DataError:
    fields = ", ".join(k for k, v in row.items() if v is not None) or "no fields"
    label = f"{where} ({ds.type_name or 'pre-tokenized'})"
    if isinstance(e, KeyError):
        return DataError(label, f"missing field {e.args[0]!r} (row has: {fields})",
                         "fix the row, or map the field names in this dataset's config")
    return DataError(label, f"{type(e).__name__}: {e} (row has: {fields})",
                     "check the types of this row's fields against the dataset type")


def shuffle_split(rows: Rows, data: DataConfig, seed: int) -> tuple[Rows, Rows | None]:
    """Seeded shuffle (shuffle_merged_datasets) and val_set_size split: a fraction (<1) or a count."""
    import numpy as np

    n = len(rows)
    n_eval = int(round(data.val_set_size * n)) if data.val_set_size < 1 else int(data.val_set_size)
    if data.val_set_size and not 0 < n_eval < n:
        raise DataError("val_set_size", f"val_set_size {data.val_set_size} leaves {n - n_eval} of {n} rows to train on",
                        "use a smaller val_set_size or more data")
    if not data.shuffle_merged_datasets and not n_eval:
        return rows, None
    order = np.random.default_rng(seed).permutation(n)
    train_idx = order[n_eval:] if data.shuffle_merged_datasets else np.sort(order[n_eval:])
    return Rows(rows.path, train_idx), Rows(rows.path, np.sort(order[:n_eval])) if n_eval else None


def run_preprocess(cfg: Any, console: Any, *, debug: bool = False, debug_num_examples: int = 3,
                   debug_text_only: bool = False, debug_pieces: bool = False, dump: Path | None = None,
                   out: Any = None, protected: tuple[Path, ...] = ()) -> PreparedRows | None:
    """`newtune preprocess`: tokenize and cache, optionally show or dump rows, print the summary.
    `protected`: files --dump must not replace besides the dataset files (the config file).

    `out` (the CLI's stdout) gets what a user keeps: the --debug rows and the summary; `console` the rest."""
    from newtune.data import inspect
    from newtune.data.tokenizer import tokenizer_for

    out = console if out is None else out
    if dump is not None:
        inspect.check_dump(dump, cfg.data, protected)
    tok = tokenizer_for(cfg.model, light=True)
    if cfg.data.rl:  # preference pairs (data/preference.py)
        from newtune.data.preference import run_preprocess_pairs

        return run_preprocess_pairs(cfg, tok, console, debug=debug, debug_num_examples=debug_num_examples,
                                    debug_text_only=debug_text_only, dump=dump)
    if not cfg.data.datasets:  # pretraining only: nothing to cache, show what the stream yields
        inspect.preview_stream(cfg.data, tok, out, debug_num_examples if debug else 1, debug_text_only, debug_pieces)
        return None
    prepared = prepare_rows(cfg.data, tok, seed=cfg.train.seed, console=console)
    from newtune.data.audit import turn_end_warnings

    for warning in turn_end_warnings(cfg.data, tok):
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if debug:
        inspect.print_rows(prepared.train.iter_encoded(debug_num_examples), tok, out, debug_text_only, debug_pieces)
    if dump is not None:
        n = inspect.write_dump(prepared.train.iter_encoded(), dump)
        console.print(f"wrote {n} training rows to {dump}")
    inspect.print_summary(prepared, cfg.data, out)
    if cfg.train.sample_packing:
        out.print(inspect.packing_line(prepared.train.lengths(), cfg.data.sequence_len,
                                      cfg.train.seed if cfg.train.data_seed is None else cfg.train.data_seed),
                  highlight=False)
    return prepared
