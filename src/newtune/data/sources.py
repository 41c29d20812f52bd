"""Where rows come from: `path`/`data_files`/`ds_type`/`split`/`name`/`shards` → batches of row dicts.

No formatting here. JSON and JSONL are read line by line in Python so that a bad line is named by
file and line; Parquet, CSV, Arrow, saved datasets and hub ids go through `datasets`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newtune.config.data import DatasetConfig
from newtune.errors import DataError

BATCH = 1000
EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".parquet": "parquet", ".csv": "csv", ".arrow": "arrow",
              ".txt": "text"}


@dataclass
class RowBatch:
    """Rows plus where each came from ("train.jsonl line 12"), for error messages."""

    rows: list[dict[str, Any]]
    where: list[str]


def local_files(ds: DatasetConfig) -> list[Path] | None:
    """The local files a dataset entry reads, in order; None when `path` is not local (a hub id)."""
    path = Path(ds.path).expanduser()
    if not path.exists():
        return None
    if path.is_file():
        return [path]
    if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
        return sorted(p for p in path.rglob("*") if p.is_file())  # a save_to_disk directory
    if ds.data_files:
        names = [ds.data_files] if isinstance(ds.data_files, str) else list(ds.data_files)
        files = []
        for name in names:
            matches = sorted(path.glob(name))
            if not matches:
                raise DataError(f"{ds.path}", f"data_files entry '{name}' matches no file in this directory")
            files += [m for m in matches if m.is_file()]
        return files
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in EXTENSIONS
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise DataError(ds.path, f"directory has no data files ({', '.join(EXTENSIONS)})")
    return files


def file_kind(path: Path, ds_type: str | None) -> str:
    if ds_type:
        return ds_type
    kind = EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        raise DataError(str(path), f"cannot tell the file format from '{path.suffix}'",
                        "set ds_type: json, jsonl, parquet, csv, arrow or text on this dataset")
    return kind


def iter_batches(ds: DatasetConfig, batch_size: int | None = None, *, seed: int | None = None) -> Iterator[RowBatch]:
    """Every row of one dataset entry, in order, in batches; sharded when `shards` is set, and with `seed`
    (the run's seed, as axolotl's) the `weight` share of them."""
    batch_size = batch_size or BATCH
    weight = getattr(ds, "weight", None)
    if seed is None or weight is None or weight >= 1:
        yield from _entry_batches(ds, batch_size)
    else:
        yield from weighted(_entry_batches(ds, batch_size), weight, seed, batch_size)


def weighted(batches: Iterator[RowBatch], weight: float, seed: int, batch_size: int) -> Iterator[RowBatch]:
    """axolotl's `weight`: `dataset.shuffle(seed).select(range(max(1, int(n * weight))))` before tokenizing.

    datasets' shuffle is `np.random.default_rng(seed).permutation(n)`; the rows come in that order. The
    entry's rows are held in memory to reorder them.
    """
    import numpy as np

    rows: list[dict[str, Any]] = []
    where: list[str] = []
    for b in batches:
        rows += b.rows
        where += b.where
    if not rows:
        return
    keep = min(len(rows), max(1, int(len(rows) * weight)))
    picked = np.random.default_rng(seed).permutation(len(rows))[:keep].tolist()
    for start in range(0, keep, batch_size):
        chunk = picked[start : start + batch_size]
        yield RowBatch([rows[i] for i in chunk], [where[i] for i in chunk])


def _entry_batches(ds: Any, batch_size: int) -> Iterator[RowBatch]:
    files = local_files(ds)
    if files is None:
        yield from _from_dataset(_hub_dataset(ds), ds.path, ds, batch_size)
        return
    path = Path(ds.path).expanduser()
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        yield from _from_dataset(_saved_dataset(path, ds.split), ds.path, ds, batch_size)
        return
    kinds = {file_kind(f, ds.ds_type) for f in files}
    if kinds <= {"json", "jsonl"}:
        yield from _shard_rows(ds, files, batch_size)
        return
    if len(kinds) > 1:
        raise DataError(ds.path, f"mixes file formats ({', '.join(sorted(kinds))}); set data_files or ds_type")
    yield from _from_dataset(_packaged_dataset(kinds.pop(), files, ds), ds.path, ds, batch_size)


# ---- JSON / JSONL, read here for exact error locations ----

def read_json_rows(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    """(row, where) for each object of a JSON array file or a JSON-lines file."""
    name = path.name
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:].lstrip()
    if head.startswith(b"["):
        yield from _json_array(path)
        return
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{name} line {lineno}", f"not UTF-8 text ({e.reason} at byte {e.start} of the line)",
                                "re-encode the file as UTF-8") from None
            try:
                row = json.loads(text)
            except json.JSONDecodeError as e:
                if lineno == 1 and head.startswith(b"{") and _is_single_object(path):
                    raise DataError(name, "holds one JSON object, not a list of rows",
                                    "write one JSON object per line (JSONL) or a JSON array of objects") from None
                raise DataError(f"{name} line {lineno}", f"invalid JSON: {e.msg} (column {e.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{name} line {lineno}", f"each row must be a JSON object, not {type(row).__name__}")
            yield row, f"{name} line {lineno}"


def _is_single_object(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_bytes()), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def _json_array(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path.name} line {line}", f"not UTF-8 text ({e.reason})", "re-encode the file as UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path.name} line {e.lineno}", f"invalid JSON: {e.msg} (column {e.colno})") from None
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"{path.name} row {i}", f"each row must be a JSON object, not {type(row).__name__}")
        yield row, f"{path.name} row {i}"


def _count_json_rows(files: list[Path]) -> int:
    return sum(1 for f in files for _ in read_json_rows(f))


def _shard_rows(ds: DatasetConfig, files: list[Path], batch_size: int) -> Iterator[RowBatch]:
    """JSON rows in batches, as written: a key a row lacks stays absent (formats tell it from a null value)."""
    lo, hi = 0, None
    if ds.shards:
        lo, hi = shard_range(_count_json_rows(files), ds.shards, ds.shards_idx or 0)
    rows: list[dict] = []
    where: list[str] = []
    i = 0
    for f in files:
        for row, w in read_json_rows(f):
            if i >= lo and (hi is None or i < hi):
                rows.append(row)
                where.append(w)
                if len(rows) >= batch_size:
                    yield RowBatch(rows, where)
                    rows, where = [], []
            i += 1
    if rows:
        yield RowBatch(rows, where)


def shard_range(n: int, shards: int, index: int) -> tuple[int, int]:
    """Contiguous shard `index` of `shards` over n rows, as `datasets.Dataset.shard(contiguous=True)`."""
    if index >= shards:
        raise DataError("shards_idx", f"shards_idx {index} must be below shards ({shards})")
    div, mod = divmod(n, shards)
    start = div * index + min(index, mod)
    return start, start + div + (1 if index < mod else 0)


# ---- everything else goes through `datasets` ----

def _from_dataset(hf: Any, name: str, ds: DatasetConfig, batch_size: int) -> Iterator[RowBatch]:
    offset = 0
    if ds.shards:
        if (ds.shards_idx or 0) >= ds.shards:
            raise DataError("shards_idx", f"shards_idx {ds.shards_idx} must be below shards ({ds.shards})")
        offset = shard_range(len(hf), ds.shards, ds.shards_idx or 0)[0]
        hf = hf.shard(num_shards=ds.shards, index=ds.shards_idx or 0, contiguous=True)
    label = Path(name).name or name
    for start in range(0, len(hf), batch_size):
        cols = hf[start : start + batch_size]
        keys = list(cols)
        rows = [dict(zip(keys, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]
        yield RowBatch(rows, [f"{label} row {offset + start + j}" for j in range(len(rows))])


def _packaged_dataset(kind: str, files: list[Path], ds: DatasetConfig) -> Any:
    import datasets

    if kind == "arrow" and all(_is_stream_arrow(f) for f in files):
        return datasets.concatenate_datasets([datasets.Dataset.from_file(str(f)) for f in files])
    builder = {"jsonl": "json"}.get(kind, kind)
    level = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # its readers log the error we raise below
    try:
        return datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train")
    except Exception as e:  # the reader's own message is the most useful thing to show
        raise read_error(e, kind, files, ds.path) from None
    finally:
        datasets.logging.set_verbosity(level)


def read_error(e: BaseException, kind: str, files: list[Path], path: str) -> DataError:
    """The reader's root cause (pandas' parser error under datasets' wrapper), with the line it names."""
    import re

    cause = e
    while cause.__cause__ is not None or (cause.__context__ is not None and not cause.__suppress_context__):
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    where = files[0].name if len(files) == 1 else path
    if "corresponds to no data" in str(e) or type(cause).__name__ == "EmptyDataError":
        return DataError(where, "holds no rows" + (" (not even a header line)" if "columns" in text else ""),
                         "add rows to it, or remove this dataset entry")
    line = re.search(r"\bline (\d+)", text)
    row = re.search(r"starting at row (\d+)", text)  # pandas counts the header as row 0
    if line or row:
        where += f" line {line.group(1) if line else int(row.group(1)) + 1}"
    hint = ("quote fields that hold commas or line breaks, and close every quote" if kind == "csv"
            else f"check that the file is valid {kind}")
    return DataError(where, f"cannot read as {kind}: {text}", hint)


def _is_stream_arrow(path: Path) -> bool:
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as src:
            pa.ipc.open_stream(src).schema  # noqa: B018
        return True
    except pa.ArrowInvalid:
        return False


def _saved_dataset(path: Path, split: str) -> Any:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(str(path), f"has no split '{split}' (splits: {', '.join(loaded)})")
        return loaded[split]
    return loaded


def looks_local(path: str) -> bool:
    """A path a user means as a file or directory here (a data file extension, or ./ ../ / ~), not a hub id."""
    return path.startswith(("/", "./", "../", "~")) or Path(path).suffix in EXTENSIONS


def missing_path(path: str) -> str:
    """`examples/data/x.jsonl: not found (relative to /current/dir)`: where a relative path was looked for."""
    p = Path(path).expanduser()
    return "not found" if p.is_absolute() else f"not found (relative to {Path.cwd()})"


def hub_token(entry: Any) -> dict[str, bool]:
    """`token=` for the hub, as axolotl passes hf_use_auth_token: true sends the saved token, false none."""
    token = getattr(entry, "_hub_token", None)
    return {} if token is None else {"token": token}


def _hub_dataset(ds: DatasetConfig) -> Any:
    if looks_local(ds.path):
        raise DataError(ds.path, missing_path(ds.path), "relative paths are resolved against the working "
                        "directory, as in axolotl: run from the directory they are relative to, or give an absolute path")
    hint = (f"'{ds.path}' is not a local file or directory; to train offline, download it elsewhere and set "
            "path: to the local .jsonl/.parquet file or directory")
    if os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        raise DataError(ds.path, "not a local path, and the dataset hub is unreachable (offline mode is set)", hint)
    import datasets

    try:
        return datasets.load_dataset(ds.path, name=ds.name, split=ds.split, revision=ds.revision,
                                     data_files=ds.data_files, **hub_token(ds))
    except (ConnectionError, OSError, TimeoutError) as e:
        raise DataError(ds.path, f"not a local path, and the dataset hub is unreachable ({str(e).splitlines()[0]})",
                        hint) from None
    except Exception as e:
        if "offline" in str(e).lower() or "connect" in str(e).lower() or "resolve" in str(e).lower():
            raise DataError(ds.path, "not a local path, and the dataset hub is unreachable", hint) from None
        raise
