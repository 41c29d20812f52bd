"""The prepared-dataset cache: a key that covers everything by construction, atomic writes, a file lock.

Key = sha256 of the data config JSON, the tokenizer fingerprint, each source file's identity, the
newtune version and a hash of the newtune/data sources. No list of "fields that matter".

A source file's identity (env NEWTUNE_CACHE_IDENTITY): `stat` (the default) is its path, size, mtime, ctime
and inode: an edit that keeps size and mtime (`cp -p`, `rsync -a`, `touch -r`) still changes ctime, which no
copy can set. `content` is its size and sha256 (read in full on every run): for file systems whose ctime
cannot be trusted, and to reuse an entry for a copy of the same data elsewhere.

An entry counts only once verified: meta.json, written last, records each file's size and sha256; sizes are
checked on every use (a truncated rows.arrow is rebuilt, with a warning), contents too in `content` mode.
Staging directories and temp files carry their process id and host; those of a process that is gone (killed
mid-write) are removed at the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from newtune.config.data import DataConfig

ROWS_FILE = "rows.arrow"
META_FILE = "meta.json"
IDENTITY_ENV = "NEWTUNE_CACHE_IDENTITY"
_code_hash: str | None = None
log = logging.getLogger(__name__)


def cache_dir(data: DataConfig) -> Path:
    """`dataset_prepared_path`, else `<newtune cache>/prepared`."""
    from newtune.embedded import cache_root

    return Path(data.dataset_prepared_path).expanduser() if data.dataset_prepared_path else cache_root() / "prepared"


def identity_mode() -> str:
    """NEWTUNE_CACHE_IDENTITY: `stat` (default) or `content`; anything else is a user error."""
    from newtune import env
    from newtune.errors import NewtuneError

    mode = env.value(IDENTITY_ENV) or "stat"
    if mode not in env.VARIABLES[IDENTITY_ENV].allowed:  # also when called without the CLI's start-up check
        raise NewtuneError(IDENTITY_ENV, f"unknown value {os.environ[IDENTITY_ENV]!r}",
                           "stat (size, mtime, ctime: the default) or content (sha256 of every source file)")
    return mode


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_identity(path: Path, content: bool | None = None) -> str:
    """A source file's identity: path, size, mtime, ctime and inode (`stat`), or size and sha256 (`content`);
    `content=None` follows NEWTUNE_CACHE_IDENTITY."""
    if content is None:
        content = identity_mode() == "content"
    st = path.stat()
    if not content:
        return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
    return f"{st.st_size}:{sha256_file(path)}"


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
    """The entry for key if it is there and verified; a damaged one is removed (and so rebuilt), with a warning."""
    entry = directory / key
    if not entry.is_dir():
        return None
    problem = entry_damage(entry, contents=identity_mode() == "content")
    if problem is None:
        return entry
    log.warning("cache entry %s is damaged (%s): tokenizing again", entry, problem)
    shutil.rmtree(entry, ignore_errors=True)
    return None


def entry_damage(entry: Path, contents: bool = False) -> str | None:
    """What is wrong with an entry against the manifest in its meta.json (sizes; sha256 too with `contents`)."""
    try:
        files = json.loads((entry / META_FILE).read_text()).get("files")
    except (OSError, ValueError, AttributeError) as e:
        return f"{META_FILE} is missing or unreadable ({e.__class__.__name__})"
    if not isinstance(files, dict) or ROWS_FILE not in files:
        return f"{META_FILE} lists no files (an entry from an older newtune)"
    for name, rec in files.items():
        f = entry / name
        if not f.is_file():
            return f"{name} is missing"
        if f.stat().st_size != rec["size"]:
            return f"{name} has {f.stat().st_size} bytes where {rec['size']} were written"
        if contents and sha256_file(f) != rec["sha256"]:
            return f"{name} differs from what was written (its sha256 does not match)"
    return None


def owner_tag() -> str:
    """`<pid>@<host>`: put in temp names so the next run can tell a live writer from a killed one."""
    return f"{os.getpid()}@{socket.gethostname()}"


def _owner_gone(tag: str) -> bool:
    """Whether the process named by a `<pid>[@<host>]` tag is dead on this host (never for another host's)."""
    pid, _, host = tag.partition("@")
    if not pid.isdigit() or (host and host != socket.gethostname()):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, not ours to signal
        return False
    return False


def remove_dead_temps(directory: Path, prefix: str) -> list[Path]:
    """Remove `<prefix><pid>[@<host>][~...]` files and dirs in directory whose process is gone; return them."""
    removed = []
    for p in directory.glob(f"{prefix}*") if directory.is_dir() else []:
        tag = p.name[len(prefix):].split("~", 1)[0]  # "~": in no pid, nor in a host name
        if _owner_gone(tag):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


STAGING_PREFIX = ".staging-"


@contextmanager
def staging(directory: Path, key: str) -> Iterator[Path]:
    """A temp dir beside the entry; renamed into place on success, removed on any error. Staging dirs of
    killed runs (any key) are removed first."""
    directory.mkdir(parents=True, exist_ok=True)
    for p in remove_dead_temps(directory, STAGING_PREFIX):
        log.info("removed %s, left by a run that was stopped while tokenizing", p)
    tmp = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{owner_tag()}~{key[:16]}-", dir=directory))
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
    """meta.json, written last, with each file's size and sha256: the entry's manifest."""
    files = {f.name: {"size": f.stat().st_size, "sha256": sha256_file(f)}
             for f in sorted(entry.iterdir()) if f.is_file() and f.name != META_FILE}
    (entry / META_FILE).write_text(json.dumps({**meta, "files": files}, indent=1))


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
