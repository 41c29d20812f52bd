"""The prepared-dataset cache: a key that covers everything by construction, atomic writes, a file lock.

Key = sha256 of the data config JSON, the tokenizer fingerprint, each source file's identity, the
newtune version and a hash of the newtune/data sources. No list of "fields that matter".
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROWS_FILE = "rows.arrow"
META_FILE = "meta.json"
_code_hash: str | None = None


def cache_dir(data: Any) -> Path:
    """`dataset_prepared_path`, else `<newtune cache>/prepared`."""
    from newtune.embedded import cache_root

    return Path(data.dataset_prepared_path).expanduser() if data.dataset_prepared_path else cache_root() / "prepared"


def file_identity(path: Path, content: bool = False) -> str:
    """size + mtime (fast path) or a content hash, for a source file."""
    st = path.stat()
    if not content:
        return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"{st.st_size}:{h.hexdigest()}"


def code_hash() -> str:
    """sha256 over the source of the newtune.data package: a code change re-tokenizes."""
    global _code_hash
    if _code_hash is None:
        root = Path(__file__).parent
        h = hashlib.sha256()
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix in (".py", ".jinja"):
                h.update(str(p.relative_to(root)).encode())
                h.update(p.read_bytes())
        _code_hash = h.hexdigest()
    return _code_hash


def cache_key(data_json: str, tokenizer_fp: str, file_ids: Iterable[str], extra: str = "") -> str:
    from newtune import __version__

    h = hashlib.sha256()
    for part in (data_json, tokenizer_fp, *file_ids, __version__, code_hash(), extra):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


@contextmanager
def locked(directory: Path, key: str) -> Iterator[None]:
    """Hold `<key>.lock` so two processes preparing the same key wait for each other."""
    from filelock import FileLock

    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory / f"{key}.lock")):
        yield


def lookup(directory: Path, key: str) -> Path | None:
    entry = directory / key
    return entry if (entry / META_FILE).exists() and (entry / ROWS_FILE).exists() else None


@contextmanager
def staging(directory: Path, key: str) -> Iterator[Path]:
    """A temp dir beside the entry; renamed into place on success, removed on any error."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=directory))
    try:
        yield tmp
        final = directory / key
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_meta(entry: Path, meta: dict) -> None:
    (entry / META_FILE).write_text(json.dumps(meta, indent=1))


def read_meta(entry: Path) -> dict:
    return json.loads((entry / META_FILE).read_text())


class ArrowRows:
    """Streams encoded rows to an Arrow IPC file in batches (input_ids, labels, length), never all in memory."""

    def __init__(self, path: Path, batch_rows: int = 2000) -> None:
        import pyarrow as pa

        self.pa = pa
        self.schema = pa.schema([("input_ids", pa.list_(pa.int32())), ("labels", pa.list_(pa.int32())),
                                 ("length", pa.int32())])
        self.sink = pa.OSFile(str(path), "wb")
        self.writer = pa.ipc.new_stream(self.sink, self.schema)
        self.batch_rows = batch_rows
        self.pending: list[Any] = []  # TokenColumns
        self.rows = 0

    def add(self, cols: Any) -> None:
        """Queue a batch of TokenColumns; written once `batch_rows` rows are waiting."""
        if len(cols):
            self.pending.append(cols)
            self.rows += len(cols)
        if self.rows >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        """One record batch from the queued columns' int32 buffers (no per-row Python lists)."""
        if not self.pending:
            return
        from newtune.data.columns import concat

        cols = concat(self.pending)
        start, stop = int(cols.offsets[0]), int(cols.offsets[-1])
        offsets = (cols.offsets - start).astype("int32")
        batch = self.pa.RecordBatch.from_arrays([self._lists(cols.ids[start:stop], offsets),
                                                 self._lists(cols.labels[start:stop], offsets),
                                                 int_array(offsets[1:] - offsets[:-1])], schema=self.schema)
        self.writer.write_batch(batch)
        self.pending, self.rows = [], 0

    def _lists(self, values: Any, offsets: Any) -> Any:
        pa = self.pa
        return pa.Array.from_buffers(pa.list_(pa.int32()), len(offsets) - 1, [None, pa.py_buffer(offsets)],
                                     children=[int_array(values)])

    def close(self) -> None:
        self.flush()
        self.writer.close()
        self.sink.close()


def int_array(values: Any) -> Any:
    """An int32 (array 'i' or numpy int32) or int64 (numpy) buffer as a pyarrow array, without pa.array's conversions."""
    import pyarrow as pa

    int32 = getattr(values, "typecode", None) == "i" or str(getattr(values, "dtype", "")) == "int32"
    if hasattr(values, "dtype"):
        import numpy as np

        values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.int32() if int32 else pa.int64(), len(values), [None, pa.py_buffer(values)])


def open_rows(path: Path) -> Any:
    """The cached rows as a memory-mapped `datasets.Dataset`."""
    import datasets

    return datasets.Dataset.from_file(str(path), in_memory=False)
