"""source → format → encode → filter → cache → seeded shuffle and split: `prepare(cfg.data, tok, seed=)`.

The parts: `rows` (the prepared-rows types and the seeded split), `executors` (serial / threaded / process
encoding of batches), `row_errors` (naming a failing row), `room` (the sequence_len preflight); this module
ties them to the cache, and `run_preprocess` is the command (presentation in `inspect`).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from newtune.config.data import AFTER_CACHE, DataConfig, DatasetConfig
from newtune.data import cache
from newtune.data.entries import NOTHING_TRAINED_HINT, check_roles_to_train, located, no_rows
from newtune.data.executors import encoded_batches
from newtune.data.filters import PartStats, keep_rows
from newtune.data.options import options_of
from newtune.data.room import check_template_room
from newtune.data.rowcodec import expand_columns, format_context
from newtune.data.rows import EVAL_FILE, PreparedRows, Rows, Summary, shuffle_split, task_column
from newtune.data.sources import local_files
from newtune.data.types import FormatContext, Tokenizer
from newtune.errors import DataError

if TYPE_CHECKING:
    from rich.console import Console

    from newtune.config.run import RunConfig

GC_YOUNG = 20_000  # young-generation GC threshold while encoding (Python's default is 700)


def prepare(data: DataConfig, tokenizer: Tokenizer, *, seed: int, console: Console | None = None, tasks: bool = False) -> PreparedRows:
    """As `prepare_rows`, for training. `tasks` (multitask prompt tuning): rows carry a task_id column, each
    row's dataset's `task_id` (default 0)."""
    rows = prepare_rows(data, tokenizer, seed=seed, console=console)
    if not tasks:
        return rows
    train_tasks = task_column(data.datasets, rows.summary.train.per_dataset)
    evalset = None
    if rows.eval is not None:
        from_test = rows.eval.path is not None and rows.eval.path.name == EVAL_FILE
        evalset = rows.eval.with_tasks(task_column(data.test_datasets, rows.summary.test.per_dataset) if from_test else train_tasks)
    return PreparedRows(rows.train.with_tasks(train_tasks), evalset, rows.summary)


def prepare_pretraining(data: DataConfig, tokenizer: Tokenizer, *, rows: int) -> PreparedRows:
    """The first `rows` packed rows of the `pretraining_dataset` stream (all a max_steps run reads), in order.

    The stream has no end, so training reads exactly what its steps need, once, before the first step:
    the rows are then indexed like any dataset, which keeps resume exact.
    """
    from itertools import islice

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
    return PreparedRows(Rows.of_columns(columns), None, summary)


def prepare_rows(data: DataConfig, tokenizer: Tokenizer, *, seed: int, console: Console | None = None) -> PreparedRows:
    """Encode (or reuse the cache), then shuffle and split as the config says: the rows preprocess and train read."""
    from newtune.data.tokenizer import fingerprint

    start = time.perf_counter()
    if not data.datasets:
        raise DataError("datasets", "no datasets to prepare")
    if data.skip_prepare_dataset:
        entry, cached = uncached_rows(data, tokenizer, console, seed), False
    else:
        root = cache.cache_dir(data)
        key = cache.cache_key(data.model_dump_json(exclude=AFTER_CACHE), fingerprint(tokenizer),
                              source_identities(data) + weight_seed(data, seed))
        with cache.locked(root, key):
            entry = cache.lookup(root, key)
            cached = entry is not None
            if entry is None:
                if console is not None:
                    console.print(f"[dim]tokenizing → {root / key}[/dim]")
                with cache.staging(root, key) as tmp:
                    stats = build(data, tokenizer, tmp, seed)
                    cache.write_meta(tmp, stats)
                entry = root / key
    meta = cache.read_meta(entry)
    train, evalset = shuffle_split(Rows(entry / cache.ROWS_FILE), data, seed, meta["train"]["per_dataset"])
    if (entry / EVAL_FILE).exists():
        evalset = Rows(entry / EVAL_FILE)
    summary = Summary(train=PartStats(**meta["train"]), test=PartStats(**meta["test"]) if meta.get("test") else None,
                      train_rows=len(train), eval_rows=len(evalset) if evalset is not None else 0,
                      seconds=time.perf_counter() - start, cached=cached, cache_path=str(entry))
    return PreparedRows(train, evalset, summary)


def uncached_rows(data: DataConfig, tokenizer: Tokenizer, console: Console, seed: int) -> Path:
    """skip_prepare_dataset: tokenize for this process only, into a temp dir removed at exit; no cache read or written."""
    import atexit
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="newtune-rows-"))
    atexit.register(shutil.rmtree, tmp, True)
    if console is not None:
        console.print("[dim]tokenizing for this run only (skip_prepare_dataset: nothing cached)[/dim]")
    cache.write_meta(tmp, build(data, tokenizer, tmp, seed))
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


def weight_seed(data: DataConfig, seed: int) -> list[str]:
    """The seed picks the rows a `weight` keeps, so it is part of the cache key then (and only then)."""
    weighted = any(ds.weight is not None and ds.weight < 1 for ds in [*data.datasets, *(data.test_datasets or [])])
    return [f"weight seed {seed}"] if weighted else []


def build(data: DataConfig, tokenizer: Tokenizer, directory: Path, seed: int) -> dict:
    """Encode every part into Arrow files in `directory`; return the stats (stored as the cache meta)."""
    import gc

    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], GC_YOUNG), *threshold[1:])  # rows are short-lived: fewer young-GC passes
    try:
        return _build(data, tokenizer, directory, seed)
    finally:
        gc.set_threshold(*threshold)


def _build(data: DataConfig, tokenizer: Tokenizer, directory: Path, seed: int) -> dict:
    ctx = format_context(data, tokenizer)
    for i, ds in enumerate(data.datasets):
        check_template_room(ds, f"datasets[{i}]", data, tokenizer, ctx)
    for i, ds in enumerate(data.test_datasets or []):
        check_template_room(ds, f"test_datasets[{i}]", data, tokenizer, ctx)
    for i, ds in enumerate(data.datasets):
        check_roles_to_train(ds, f"datasets[{i}]", ctx)
    seen: set[bytes] | None = set() if data.dataset_exact_deduplication else None
    train = encode_part(data.datasets, data, tokenizer, ctx, directory / cache.ROWS_FILE, seen, seed=seed)
    test = None
    if data.test_datasets:
        test = encode_part(data.test_datasets, data, tokenizer, ctx, directory / EVAL_FILE, seen, "test_datasets", seed)
    if train.rows_out == 0:
        raise DataError("datasets", f"no training rows left ({describe_drops(train) or 'the datasets are empty'})",
                        "check the dataset paths, sequence_len and excess_length_strategy")
    if train.trainable == 0:
        shown = ", ".join(train.zero_trainable_rows)
        raise DataError("datasets", f"no row has a trainable token: every label of the {train.rows_out} training rows "
                        f"is masked (e.g. {shown})", NOTHING_TRAINED_HINT)
    return {"train": asdict(train), "test": asdict(test) if test else None}


def describe_drops(stats: PartStats) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in stats.dropped.items())


def encode_part(entries: list[DatasetConfig], data: DataConfig, tok: Tokenizer, ctx: FormatContext, path: Path,
                seen: set[bytes] | None, label: str = "datasets", seed: int | None = None) -> PartStats:
    stats = PartStats()
    sink = cache.ArrowRows(path)
    try:
        for i, ds in enumerate(entries):
            before, rows_before = stats.rows_out, stats.rows_in
            try:
                for where, cols in encoded_batches(ds, data, tok, ctx, seed):
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


def run_preprocess(cfg: RunConfig, console: Console, *, debug: bool = False, debug_num_examples: int = 3,
                   debug_text_only: bool = False, debug_pieces: bool = False, dump: Path | None = None,
                   out: Console | None = None, protected: tuple[Path, ...] = ()) -> PreparedRows | None:
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
